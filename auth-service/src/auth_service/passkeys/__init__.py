"""Passkeys (WebAuthn): registration, discoverable sign-in without a username, and their list."""
