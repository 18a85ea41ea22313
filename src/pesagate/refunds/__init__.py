"""Refunds: KulmiPay's chargebacks API, carried out through M-Pesa's Reversal API exactly
once, with Transaction Status for the reversals whose Result never came (README, "Refunds")."""
