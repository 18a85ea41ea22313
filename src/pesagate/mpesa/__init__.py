"""Safaricom Daraja: the wire protocol shared by the gateway's client and the simulator."""
