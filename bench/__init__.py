"""Benchmarks (`make bench`): every bench/*_bench.py module's run() rows, in one table."""
