"""``python -m interp_helpers explain IMAGE ...`` -- see :mod:`interp_helpers.cli`."""
import sys

from .cli import main

sys.exit(main())
