"""`Idempotency-Key` on every creating POST (SPEC section 7)."""
