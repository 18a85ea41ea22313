"""Businesses, API keys, payment settings, and request authentication."""
