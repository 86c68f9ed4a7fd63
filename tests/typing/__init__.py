"""A user script type-checked with mypy as a user would."""
