"""cnn2snn-demo (README command 1): tiny in-process runs prove the table, exactness, determinism."""
import dataclasses
import io
import os
import re
import subprocess
import sys

import pytest

from cnn2snn import demo

#: A tiny run of the Akida 1.0 (AKD1000) flow (the default generation is Akida 2.0).
TINY = ["--akida-version", "v1", "--epochs", "1", "--qat-epochs", "1", "--train-samples", "128",
        "-q"]


def test_tiny_demo_prints_table_with_exact_outputs(tmp_path, capsys):
    path = tmp_path / "out" / "digits.fbz"
    assert demo.main(TINY + ["-o", str(path)]) == demo.EXIT_OK
    out = capsys.readouterr().out
    for step in range(1, 9):
        assert f"[{step}/8]" in out
    table = out[out.index("cnn2snn demo: digits CNN on AKD1000"):]
    assert "akida ≡ quantized Keras   100.00%  (450/450 samples bit-identical)" in table
    for label in ("float Keras accuracy", "quantized Keras accuracy", "akida_core accuracy",
                  "parameters", "AKD1000 mapping", "program size", "saved model", "total time"):
        assert label in table
    assert "1 hardware / 1 sequence(s)" in table
    assert f"{path}  (" in table and "reloaded identical" in table
    assert path.stat().st_size > 0

    import akida_core
    reloaded = akida_core.Model(str(path))
    assert [s.name for s in reloaded.sequences] == ["HW/conv_0-classifier"]
    assert reloaded.device is not None and "BC.00.000.002" in reloaded.device.desc


def _same_seed_twice(tmp_path, **settings):
    runs = [demo.run_demo(seed=3, verbose=0, output=str(tmp_path / f"{i}.fbz"),
                          print_fn=lambda *_: None, **settings) for i in range(2)]
    first, second = (dataclasses.replace(r, seconds=0.0, fbz_path="") for r in runs)
    assert first == second
    assert first.identical_fraction == 1.0 and first.reloaded_identical
    assert (tmp_path / "0.fbz").read_bytes() == (tmp_path / "1.fbz").read_bytes()
    assert first.akida_accuracy == first.quantized_accuracy  # same outputs, same argmax
    return first


def test_same_seed_same_model_without_training(tmp_path):
    result = _same_seed_twice(tmp_path, epochs=0, qat_epochs=0, train_samples=32)
    assert result.train_samples == 32 and result.qat_epochs == 0


@pytest.mark.slow
def test_same_seed_same_model_and_figures_after_training(tmp_path):
    result = _same_seed_twice(tmp_path, epochs=1, qat_epochs=1, train_samples=64)
    assert result.float_accuracy > 0.2  # one epoch on 64 images already beats chance (10%)


def test_eight_bit_weights_are_reported_as_akd1000_issues(tmp_path, capsys):
    code = demo.main(["--akida-version", "v1", "--epochs", "0", "--qat-epochs", "0",
                      "--train-samples", "32", "-q", "--weight-bits", "8",
                      "-o", str(tmp_path / "never.fbz")])
    out = capsys.readouterr().out
    assert code == demo.EXIT_MISMATCH
    assert "AKD1000 issues" in out and "not converted" in out
    assert "conv_1" in out  # the first non-input layer is named by its issue
    assert not (tmp_path / "never.fbz").exists()


def test_help_explains_bits_epochs_output_and_seed(capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--epochs", "--qat-epochs", "--weight-bits", "--activation-bits",
                   "--input-weight-bits", "--seed", "--output", "Exit codes"):
        assert option in text


@pytest.mark.parametrize("argv", [["--epochs", "-1"], ["--weight-bits", "3"],
                                  ["--akida-version", "v1", "--activation-bits", "8"],
                                  ["--train-samples", "0"]])
def test_bad_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(argv)
    assert exit_info.value.code == demo.EXIT_USAGE
    assert "Traceback" not in capsys.readouterr().err


def test_output_that_cannot_be_written_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    assert demo.main(TINY + ["-o", str(blocker / "digits.fbz")]) == demo.EXIT_FILE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a directory" in err
    assert demo.main(TINY + ["-o", str(tmp_path)]) == demo.EXIT_USAGE
    assert "is a directory" in capsys.readouterr().err


def test_first_line_names_the_generation_selected_by_default(tmp_path, capsys, monkeypatch):
    """Without --akida-version the demo runs the selected generation (default Akida 2.0) and says
    so first; an invalid CNN2SNN_TARGET_AKIDA_VERSION is a usage error naming it."""
    assert demo.main(["-o", str(tmp_path)]) == demo.EXIT_USAGE  # stops before training
    assert capsys.readouterr().out.splitlines()[0] == demo.GENERATION_LINES["v2"]
    monkeypatch.setenv("CNN2SNN_TARGET_AKIDA_VERSION", "v1")
    assert demo.main(["-o", str(tmp_path)]) == demo.EXIT_USAGE
    assert capsys.readouterr().out.splitlines()[0] == demo.GENERATION_LINES["v1"]
    assert demo.main(["--akida-version", "v2", "-o", str(tmp_path)]) == demo.EXIT_USAGE
    assert capsys.readouterr().out.splitlines()[0] == demo.GENERATION_LINES["v2"]
    monkeypatch.setenv("CNN2SNN_TARGET_AKIDA_VERSION", "v9")
    with pytest.raises(SystemExit) as exit_info:
        demo.main([])
    assert exit_info.value.code == demo.EXIT_USAGE
    assert "CNN2SNN_TARGET_AKIDA_VERSION='v9'" in capsys.readouterr().err


def _result(**changes):
    figures = dict(seed=0, train_samples=1347, test_samples=450, weight_bits=4, activation_bits=4,
                   input_weight_bits=8, qat_epochs=3, float_accuracy=0.9644,
                   quantized_accuracy=0.9911, akida_accuracy=0.9911, identical_samples=450,
                   parameters=19418, float_bytes=77672, akida_weight_bytes=9616,
                   device="VirtualDevice/BC.00.000.002", sequences=1, hardware_sequences=1,
                   nps=65, device_nps=78, program_bytes=11624, fbz_path="/x/digits.fbz",
                   fbz_bytes=26384, reloaded_identical=True, seconds=41.23)
    figures.update(changes)
    return demo.DemoResult(**figures)


def test_table_shows_every_figure():
    table = demo.format_table(_result())
    assert "float Keras accuracy      96.44%" in table
    assert "akida ≡ quantized Keras   100.00%  (450/450 samples bit-identical)" in table
    assert "19,418  (float32 77,672 bytes; Akida weights 9,616 bytes)" in table
    assert "65 of 78 NPs" in table and "11,624 bytes" in table
    assert "/x/digits.fbz  (26,384 bytes, reloaded identical)" in table
    assert "41.2 s" in table


def test_table_shows_mismatches_and_issues():
    assert "449/450" in demo.format_table(_result(identical_samples=449))
    assert "reloaded DIFFERENT" in demo.format_table(_result(reloaded_identical=False))
    table = demo.format_table(_result(issues=("a", "b")))
    assert "AKD1000 issues" in table and "2 (see above)" in table
    assert "saved model" not in table


def test_output_problem_accepts_new_nested_directories(tmp_path):
    assert demo._output_problem(os.fspath(tmp_path / "new" / "deeper" / "m.fbz")) is None
    assert demo._output_problem(None) is None


def test_readme_python_quickstart_runs(tmp_path, monkeypatch, capsys):
    import pathlib
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Quickstart (Python)"):]
    code = section[section.index("```python") + len("```python"):section.index("```\n", 10)]
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md quickstart", "exec"), {})
    assert (tmp_path / "digits.fbz").stat().st_size > 0
    accuracy = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.8 < accuracy <= 1.0


@pytest.mark.slow
def test_default_demo_meets_the_readme_promise(tmp_path):
    """README command 1 with its defaults: accurate, exact, one AKD1000 sequence (its duration is
    measured in docs/cli.md and bench/, not asserted)."""
    result = demo.run_demo(output=str(tmp_path / "digits.fbz"), verbose=0, print_fn=lambda *_: None)
    assert (result.train_samples, result.test_samples, result.qat_epochs) == (1347, 450, 3)
    assert result.float_accuracy > 0.95 and result.quantized_accuracy > 0.95
    assert result.akida_accuracy == result.quantized_accuracy
    assert result.identical_fraction == 1.0 and result.reloaded_identical
    assert (result.sequences, result.hardware_sequences) == (1, 1)
    assert 0 < result.nps <= result.device_nps == 78 and result.program_bytes > 0


# ---- output read from a pipe, as in CI: no TensorFlow C++ log lines, no escape codes --------------

#: TensorFlow/absl C++ log lines ("E0000 00:00:17.. cuda_platform.cc:52] failed call to cuInit")
#: and absl's notice; the escape codes and backspaces of Keras's progress bar.
JUNK = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:|absl|\x1b|\x08|\r", re.MULTILINE)


def _piped(*command):
    """(exit code, stdout + stderr) of a command run as a user would, with both streams piped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP_", "PYTEST_"))}
    done = subprocess.run([sys.executable, "-c", *command], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=env, text=True, timeout=600)
    return done.returncode, done.stdout


def test_piped_demo_prints_plain_progress_and_no_tensorflow_logs(tmp_path):
    code, out = _piped("import sys; from cnn2snn.demo import main; sys.exit(main())", *TINY[:-1],
                       "-o", str(tmp_path / "digits.fbz"))
    assert code == demo.EXIT_OK, out
    assert JUNK.findall(out) == [], out
    epochs = re.findall(r"^4/4 - \d+s - .*accuracy: [\d.]+ - loss: [\d.e-]+$", out, re.MULTILINE)
    assert len(epochs) == 2, out  # one plain line per epoch (4 batches): float training, then QAT
    assert re.search(r"^\[3/8\] Quantizing.*\n1/1 - \d+s - .*/batch$", out, re.MULTILINE), out
    assert out.count("\n") < 41, out  # 40 lines with the generation line first


def test_piped_quantizeml_command_prints_no_tensorflow_logs():
    code, out = _piped("import sys; from cnn2snn.console import quantizeml_main; "
                       "sys.exit(quantizeml_main())", "version")
    assert code == 0 and JUNK.findall(out) == [] and out.startswith("quantizeml ("), out
    code, out = _piped("import sys; from cnn2snn.console import quantizeml_main; "
                       "sys.exit(quantizeml_main())", "--debug", "version")
    assert code == 0 and re.search(r"^[IWEF]\d{4} ", out, re.MULTILINE), out  # --debug keeps them


def test_the_quantizeml_script_quiets_tensorflow_before_importing_quantizeml():
    import tomllib
    import pathlib
    pyproject = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    assert scripts["quantizeml"] == "cnn2snn.console:quantizeml_main"


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_in_a_file(tmp_path):
    from cnn2snn.console import progress_verbose

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert progress_verbose(stream=Terminal()) == 1
    with open(tmp_path / "log.txt", "w") as log:
        assert progress_verbose(stream=log) == 2
    assert progress_verbose(quiet=True, stream=Terminal()) == 0


def test_akida2_path_is_bit_exact_and_saves(tmp_path, capsys, monkeypatch):
    """The default generation, even when the Akida 1.0 recipe is selected outside the demo's
    flow afterwards (each flow selects its own generation)."""
    path = tmp_path / "digits_v2.fbz"
    code = demo.main(["--epochs", "1", "--train-samples", "128", "-q", "-o", str(path)])
    out = capsys.readouterr().out
    assert code == demo.EXIT_OK, out
    assert out.splitlines()[0] == demo.GENERATION_LINES["v2"]
    assert "Akida 2.0" in out and "InputConv2D" in out and "Dense1D" in out
    assert "samples bit-identical" in out and path.exists()


def test_akida2_result_figures():
    from cnn2snn.demo_v2 import run_demo_v2
    result = run_demo_v2(epochs=0, train_samples=64, verbose=0, print_fn=lambda *_: None)
    assert result.identical_samples == result.test_samples and result.reloaded_identical
    assert result.layers[0].endswith("InputConv2D") and result.layers[-1].endswith("Dequantizer")
