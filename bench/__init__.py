"""featureops benchmarks: `python -m bench` (or `make bench`) writes bench/results.md."""
