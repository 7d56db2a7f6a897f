"""The stack as real processes, for `make run`, the benchmark and the tests that kill things."""
