"""Stand-in: incubating names."""
