"""Stand-in: error.* attribute names."""
ERROR_TYPE = "error.type"
