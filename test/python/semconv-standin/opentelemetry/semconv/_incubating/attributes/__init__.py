"""Stand-in: incubating attribute names."""
