"""NATS: subjects, message envelopes, the client wrapper and the embedded server."""
