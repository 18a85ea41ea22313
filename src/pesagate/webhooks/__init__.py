"""Signed, durable, ordered, replayable webhooks (SPEC section 6)."""
