"""The `akida-core` command line: argument parsing and printing only (`main`: demo, summary, run;
`mapping`: the map command; `demo`: the demo model). The work is done by the model and mapping code."""
from .main import *  # noqa: F401,F403 (the flat `akida_core.cli` module's API)
from .main import EXIT_BAD_FILE, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, build_parser, main

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_USAGE", "EXIT_BAD_FILE", "EXIT_INTERNAL"]
