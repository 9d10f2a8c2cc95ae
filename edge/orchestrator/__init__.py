"""The orchestrator: job store, scheduler, node manager and the HTTP API."""
