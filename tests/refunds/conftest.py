"""Refund tests use the gateway fixtures (a real gateway with its embedded simulator)."""

from tests.gateway.conftest import gateway, start_gateway

__all__ = ["gateway", "start_gateway"]
