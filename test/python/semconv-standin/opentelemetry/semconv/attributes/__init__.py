"""Stand-in: attribute names."""
