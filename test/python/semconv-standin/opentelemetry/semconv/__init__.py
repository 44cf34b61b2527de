"""tailguard test stand-in for opentelemetry-semantic-conventions (see pyproject.toml)."""
