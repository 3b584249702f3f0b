"""Gatehouse web front."""
