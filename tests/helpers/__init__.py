"""Test helpers shared by the suites (servers of our own, waiting utilities)."""
