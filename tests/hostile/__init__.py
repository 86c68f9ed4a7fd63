"""Hostile-server tests: a raw fault-injecting server of our own."""
