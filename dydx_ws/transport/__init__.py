"""Sockets and frames, nothing dYdX-specific: the connection loop around websocket-client's
``run_forever``, the fast frame reader, connection options (TLS, proxy) and the reconnect policy."""
