"""Benchmarks. Each prints ratios measured side by side in one run; `make bench` runs
them at full size and writes docs/benchmarks.md."""
