"""Gatehouse gateway: the one front door in front of auth-, billing- and notification-service."""
