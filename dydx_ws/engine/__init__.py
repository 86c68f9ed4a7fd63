"""The threads between the socket and the callbacks: the I/O-thread side (decode, acks, server
errors), subscriptions, the worker pool and its worker side, drift repair and (opt-in) CPU
placement."""
