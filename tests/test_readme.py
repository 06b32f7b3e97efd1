"""README.md opens with exactly the two commands, and .ci/run runs the second one."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one():
    sys.path.insert(0, str(ROOT / ".ci"))
    from readme_commands import readme_commands
    demo, test = readme_commands(ROOT / "README.md")
    assert demo.startswith("pip install . && ")
    assert test.startswith('pip install ".[test]" && ') and "pytest" in test
    printed = subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_commands.py"), "test"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed == test
    assert "readme_commands.py test" in (ROOT / ".ci" / "run").read_text()
    text = (ROOT / "README.md").read_text()
    assert text.index("```") < text.index("##"), "the commands must come before any section"


def test_ci_run_fails_when_pytest_collects_nothing():
    script = (ROOT / ".ci" / "run").read_text()
    assert '"$rc" -eq 5' in script and "exit 1" in script
