"""pesagate: a self-hosted M-Pesa STK push gateway with a faithful Daraja simulator."""

__version__ = "0.1.0"
