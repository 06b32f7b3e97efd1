"""`python -m akida_core.cli ...` runs the `akida-core` command."""
import sys

from .main import main

sys.exit(main())
