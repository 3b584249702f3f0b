"""Organizations as customers: their projection (members, Stripe customer), per-seat quantity."""
