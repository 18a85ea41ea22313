"""What the Daraja client reports: one small immutable record per possible outcome.

Every answer Daraja can give (and every way the network can fail) maps to exactly one of these,
so callers match on types instead of inspecting HTTP details. `raw` keeps the response body as
text (truncated), for audit logs and for humans; it never holds a secret.
"""

from dataclasses import dataclass

# --- STK push -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushAccepted:
    """HTTP 200, ResponseCode "0": M-Pesa accepted the request (accepted, not paid)."""

    merchant_request_id: str
    checkout_request_id: str
    raw: str


@dataclass(frozen=True, slots=True)
class PushRejected:
    """Daraja refused the push: nothing was charged and no prompt will come.

    Either an `errorCode` envelope (`error_code` = "500.003.02", ...) or a 200 whose
    ResponseCode is not "0" (`error_code` = that ResponseCode, `error_message` = the
    ResponseDescription)."""

    error_code: str
    error_message: str
    http_status: int
    raw: str


@dataclass(frozen=True, slots=True)
class PushUnknown:
    """The push may or may not have reached M-Pesa (timeout, reset, 5xx page, garbage answer).

    The customer may still get a prompt and pay. NEVER retry such a push: that can charge twice.
    """

    reason: str
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class PushNotSent:
    """The push was never sent (no access token could be obtained): safe to treat as failed."""

    reason: str


PushResult = PushAccepted | PushRejected | PushUnknown | PushNotSent


# --- STK query ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryFinal:
    """The transaction has a final result. `result_code` is always a string ("0" = paid)."""

    result_code: str
    result_desc: str
    raw: str


@dataclass(frozen=True, slots=True)
class QueryPending:
    """Not final yet: 500.001.1001 "being processed", or ResultCode 4999."""

    raw: str | None = None


@dataclass(frozen=True, slots=True)
class QueryNotFound:
    """500.001.1001 "The transaction does not Exist"."""

    raw: str


@dataclass(frozen=True, slots=True)
class QueryError:
    """Anything else: network error, no token, another envelope, an unreadable answer."""

    reason: str
    raw: str | None = None


QueryResult = QueryFinal | QueryPending | QueryNotFound | QueryError


# --- Reversal and Transaction Status requests (the synchronous acknowledgement) -------------


@dataclass(frozen=True, slots=True)
class RequestAccepted:
    """HTTP 200, ResponseCode "0": queued. The Result comes later to the ResultURL."""

    originator_conversation_id: str
    conversation_id: str
    raw: str


@dataclass(frozen=True, slots=True)
class RequestRejected:
    """Refused before M-Pesa processed anything: an error envelope (or a 200 whose
    ResponseCode is not "0")."""

    error_code: str
    error_message: str
    http_status: int
    raw: str


@dataclass(frozen=True, slots=True)
class RequestUnknown:
    """It may or may not have reached M-Pesa. A reversal in this state is NEVER sent again:
    Transaction Status finds out what happened."""

    reason: str
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class RequestNotSent:
    """Nothing left this process (no access token, no certificate): safe to send later."""

    reason: str


InitiatorRequest = RequestAccepted | RequestRejected | RequestUnknown | RequestNotSent
