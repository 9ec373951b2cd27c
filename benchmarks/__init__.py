"""Speed measurements; `make bench` (python -m benchmarks) runs them all."""
