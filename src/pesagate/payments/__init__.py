"""STK push collections: invoices, customers, payment sessions, their life and their API."""
