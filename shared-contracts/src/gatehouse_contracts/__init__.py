"""Contracts shared by Gatehouse services: events, token claims, error bodies."""

from gatehouse_contracts.envelope import CloudEvent, EventData, new_event
from gatehouse_contracts.problem import Problem
from gatehouse_contracts.tokens import AccessTokenClaims

__all__ = ["AccessTokenClaims", "CloudEvent", "EventData", "Problem", "new_event"]
