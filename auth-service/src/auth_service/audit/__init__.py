"""The security audit trail: what happened to an account, when, from where and by whom."""
