"""A Daraja (M-Pesa Express) simulator that clients written for Safaricom cannot tell apart.

`create_simulator_app()` returns an ASGI app that serves the Daraja paths (OAuth, STK push,
STK query), sends result callbacks, and adds a control API, a virtual phone and a dashboard.
"""

from pesagate.simulator.app import create_simulator_app
from pesagate.simulator.settings import SimulatorSettings

__all__ = ["SimulatorSettings", "create_simulator_app"]
