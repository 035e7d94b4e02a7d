"""The maintainer's tools: results tables, notebook execution, sweeps, shipping a checkpoint.

Not part of the installed package: run them from a clone, ``python tools/NAME.py --help``.
"""
