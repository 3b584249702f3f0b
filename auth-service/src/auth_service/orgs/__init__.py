"""Organizations: people acting together, their roles, invitations, verified domains."""
