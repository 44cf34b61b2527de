"""Stand-in: incubating metrics."""
