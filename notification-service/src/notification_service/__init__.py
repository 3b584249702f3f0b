"""Gatehouse notification-service."""
