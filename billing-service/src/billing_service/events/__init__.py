"""The events billing consumes (`handlers.py`). What it publishes is `billing_service/publishing.py`."""
