"""What the image tests, the reliability run and the benchmarks share: the runtime table, the
bad-input cases, the raw HTTP reliability client, load generation and memory readings."""
