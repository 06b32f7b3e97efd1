"""Console setup of our TensorFlow commands: quiet TensorFlow, plain progress when output is a log.

Called at the top of the `main()` of `cnn2snn-demo`, `cnn2snn`, `cnn2snn-check` and `quantizeml`,
never by the library. TensorFlow's C++ libraries log while they load (oneDNN, "Could not find cuda
drivers"), before `TF_CPP_MIN_LOG_LEVEL` is read, and at their first op ("failed call to cuInit" on
a machine without a GPU): nothing a user can act on, so it is hidden unless `--debug`. This module
imports no TensorFlow itself (the cnn2snn package is lazy), so it runs before TensorFlow loads.
(`akida-core` never loads TensorFlow and needs none of this.)
"""
from __future__ import annotations

import os
import re
import sys
import tempfile

#: A C++ log line of TensorFlow/absl ("I0000 00:00:1796572051.751389    7584 port.cc:153] ...")
#: or absl's notice printed before the first of them.
TF_LOG_LINE = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] |"
                         rb"WARNING: All log messages before absl::InitializeLog\(\) )")


def quiet_tensorflow(debug: bool = False) -> None:
    """Keep TensorFlow's C++ and absl logging out of our commands' output (unless `debug`).

    Sets `TF_CPP_MIN_LOG_LEVEL=3` (a value the user exported wins), imports TensorFlow with the
    process's stderr filtered (its load-time lines ignore that variable; other stderr output is
    replayed) and sets absl's Python logging, which Keras uses for some warnings, to errors only.
    """
    if debug:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        _import_filtering_stderr("tensorflow")
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)


def _import_filtering_stderr(module: str) -> None:
    # The C++ side writes to file descriptor 2 directly: only redirecting the descriptor hides it.
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor at all: nothing to keep clean
        __import__(module)
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            __import__(module)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True)
                    if not TF_LOG_LINE.match(line)]
            if kept:
                sys.stderr.write(b"".join(kept).decode(errors="replace"))
                sys.stderr.flush()


def progress_verbose(quiet: bool = False, stream=None) -> int:
    """Keras `verbose` for our commands: 0 when `quiet`, 1 (the progress bar) on a terminal, 2 (one
    plain line per epoch or stage) when the output is a file or a pipe.

    Keras 3 draws its bar with escape codes and backspaces whenever it runs on a POSIX system,
    terminal or not, which fills a CI log with unreadable lines.
    """
    if quiet:
        return 0
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return 1 if isatty is not None and isatty() else 2


def quantizeml_main(argv: list[str] | None = None) -> int:
    """Entry point of the `quantizeml` command: quiets TensorFlow before the quantizeml package
    (whose import loads Keras and TensorFlow) is imported, then runs `quantizeml.cli.main`."""
    quiet_tensorflow("--debug" in (sys.argv[1:] if argv is None else argv))
    from quantizeml.cli import main
    return main(argv)
