"""``python -m vaeclust_tutorial``: see :mod:`vaeclust_tutorial.cli`."""

import sys

from .cli import main

sys.exit(main())
