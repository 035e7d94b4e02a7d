"""The maintainer's benchmarks: ``python benchmarks/bench.py``, ``benchmarks/vs_keras.py``,
``benchmarks/profile_step.py``. Not part of the installed package."""
