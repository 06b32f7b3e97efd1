"""Print one of the two commands README.md opens with: `demo` (first) or `test` (second).

The README's first fenced code block holds exactly two lines: the demo command and the test command.
`.ci/run` and tests/test_readme.py both read them from here, so the README stays the single source.
"""
import pathlib
import sys


def readme_commands(readme: pathlib.Path) -> list[str]:
    """Return the non-empty lines of the first ``` block of the README."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("```"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    return [line.strip() for line in lines[start + 1:end] if line.strip()]


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "test"
    cmds = readme_commands(pathlib.Path(__file__).resolve().parent.parent / "README.md")
    if len(cmds) != 2:
        sys.exit("README.md must open with exactly two commands")
    print(cmds[0] if which == "demo" else cmds[1])
