"""Client integration tests against the emulator over loopback sockets."""
