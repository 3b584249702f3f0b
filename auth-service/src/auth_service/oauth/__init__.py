"""Sign in with Google and GitHub (OAuth 2.0 / OpenID Connect through Authlib)."""
