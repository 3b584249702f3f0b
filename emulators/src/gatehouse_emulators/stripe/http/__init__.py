"""The HTTP edge: the /v1 API (keys, idempotency, routes), the /_emulator control endpoints, and the
webhooks it sends."""
