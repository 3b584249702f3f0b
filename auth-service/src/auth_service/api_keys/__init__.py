"""API keys: issue, list and revoke them; exchange one for a short-lived access token."""
