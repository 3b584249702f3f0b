"""Stripe's wire format, shared by the domain and the HTTP edge: form-encoded parameters (`Params`)
and the error body (`StripeError`)."""
