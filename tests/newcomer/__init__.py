"""A newcomer's first hour: user-style scripts run as subprocesses."""
