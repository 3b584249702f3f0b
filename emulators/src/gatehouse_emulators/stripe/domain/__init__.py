"""The emulated Stripe itself: objects, their rules and their events, with no HTTP in sight."""
