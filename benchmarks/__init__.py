"""Speed benchmarks; each writes its measurements to a JSON file."""
