"""The Indexer's wire format, no threads: the channel table, typed messages, decoding, the
server's error texts and the validation of user input."""
