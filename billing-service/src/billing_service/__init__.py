"""Gatehouse billing-service."""
