"""The session cookie's flags: HttpOnly and SameSite=Lax always, Secure in live mode (the HTTP
tests run in sandbox, over plain HTTP, where a Secure cookie would never come back)."""

from starlette.responses import Response

from pesagate.config import Settings
from pesagate.dashboard.web import set_session_cookie


def cookie_for(env: str) -> str:
    response = Response()
    set_session_cookie(response, Settings.model_construct(env=env), "token", 60)
    return response.headers["set-cookie"]


def test_live_cookies_are_secure_and_sandbox_ones_are_not():
    live, sandbox = cookie_for("live"), cookie_for("sandbox")
    for cookie in (live, sandbox):
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/dashboard" in cookie
    assert "Secure" in live and "Secure" not in sandbox
