"""Benchmarks against the sandbox (`nox -s bench`, i.e. `python -m tests.bench`).

Never part of the default test run: every figure is a ratio against a baseline measured in
the same run on the same machine, because absolute numbers on shared machines mean little.
"""
