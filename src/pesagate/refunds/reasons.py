"""KulmiPay's OpenAPI enum of chargeback reasons. A module of its own so that the `refund`
command (which only lists them) does not import the HTTP stack with the schemas."""

REASONS = ("Unavailable service", "Delayed delivery", "Wrong service", "Duplicate payment", "Other")
