"""Gatehouse gateway."""
