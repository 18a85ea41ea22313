"""Hosted checkout: checkout sessions paid on pesagate's express page, payment links that open
them, and the drop-in browser script (`/static/pesagate-inline.js`). A layer above payments:
it pushes through payments' use case steps; payments reaches it only through hooks wired in
services.py (`payments.sessions`)."""
