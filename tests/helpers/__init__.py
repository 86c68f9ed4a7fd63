"""Test helpers shared by the suites: servers of our own, SDK and emulator clients, waiting
utilities, the fixture corpus, user-script runners."""
