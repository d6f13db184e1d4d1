"""pytest-benchmark suites run by `lienwatch bench NAME`."""
