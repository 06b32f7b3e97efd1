"""The Akida 2.0 runtime benchmark runs end to end and prints what issue 17 asks of it (small input)."""
import importlib.util
import pathlib

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "runtime_v2.py"


def test_runtime_v2_prints_the_matmul_ratio_and_peak_memory(capsys):
    spec = importlib.util.spec_from_file_location("runtime_v2_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--size", "32", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.split()[:1] == ["batch"])
    assert "matmul GMAC/s" in header and header.split()[-1] == "ratio"
    rows = {int(line.split()[0]): line.split() for line in lines if line.split()[:1] in (["1"], ["64"])}
    assert set(rows) == {1, 64}
    for row in rows.values():
        samples, ratio = float(row[1]), float(row[-1].rstrip("%"))
        assert samples > 0 and 0 < ratio < 1000
    peak = next(line for line in lines if line.startswith("peak memory of a batch-64 inference"))
    assert float(peak.split(":")[1].split()[0]) > 0
