"""Second factors: authenticator apps (TOTP), recovery codes, the second step of a sign-in, and
re-authentication for sensitive actions."""
