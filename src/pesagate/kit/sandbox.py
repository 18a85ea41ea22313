"""Credentials of the Daraja sandbox, shared by the settings' defaults and the simulator."""

# The public Daraja sandbox passkey of shortcode 174379 (published by Safaricom).
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"

# The initiator of the Daraja sandbox (an API operator on the portal's test credentials). The
# simulator accepts exactly these; the gateway's sandbox defaults send them.
SANDBOX_INITIATOR = "testapi"
SANDBOX_INITIATOR_PASSWORD = "Safaricom999!*!"
