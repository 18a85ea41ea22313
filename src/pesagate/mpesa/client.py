"""The gateway's Daraja client: OAuth, STK push and STK query against Safaricom (or the simulator).

Written for the real service (see DARAJA.md). Three rules shape it:

- **Never raise for what the network or the server does.** Every answer, however malformed, and
  every network error maps to one of the result records in `pesagate.mpesa.results`.
- **Never blind-retry a push.** The only retry is after `404.001.03` "Invalid Access Token"
  (or an HTTP 401 from the API proxy): such a request was refused before M-Pesa saw it, so it is
  sent once more with a fresh token. Anything that might have reached M-Pesa is `PushUnknown`.
- **One token per client, one refresh at a time.** Concurrent callers share one in-flight OAuth
  request (an `asyncio.Lock`); the token is refreshed shortly before it expires.

Secrets (consumer secret, passkey, Password, tokens) are never logged; phones are masked.
"""

import asyncio
import base64
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import aiohttp
import orjson
import structlog

from pesagate.kit.clock import nairobi_now
from pesagate.kit.phones import mask_msisdn
from pesagate.mpesa.protocol import (
    OAUTH_PATH,
    PULL_QUERY_PATH,
    QUERY_PROCESSING_MESSAGE,
    QUERY_UNKNOWN_MESSAGE,
    REVERSAL_PATH,
    SANDBOX_CERTIFICATE_PATH,
    STK_PUSH_PATH,
    STK_QUERY_PATH,
    TRANSACTION_STATUS_PATH,
    ErrorCode,
    ResultCode,
    TransactionType,
    format_timestamp,
    stk_password,
)
from pesagate.mpesa.results import (
    InitiatorRequest,
    PushAccepted,
    PushNotSent,
    PushRejected,
    PushResult,
    PushUnknown,
    QueryError,
    QueryFinal,
    QueryNotFound,
    QueryPending,
    QueryResult,
    RequestAccepted,
    RequestNotSent,
    RequestRejected,
    RequestUnknown,
)
from pesagate.mpesa.reversal import code_text, reversal_body, status_body
from pesagate.mpesa.security import CertificateError, load_public_key, security_credential
from pesagate.mpesa.statement import (
    MAX_PAGES,
    StatementError,
    StatementResult,
    StatementWalk,
    parse_page,
    query_payload,
)
from pesagate.mpesa.transport import Transport

__all__ = [
    "DarajaAuthError",
    "DarajaClient",
    "DarajaConfig",
    "PushAccepted",
    "PushNotSent",
    "PushRejected",
    "PushResult",
    "PushUnknown",
    "QueryError",
    "QueryFinal",
    "QueryNotFound",
    "QueryPending",
    "QueryResult",
    "RequestAccepted",
    "RequestNotSent",
    "RequestRejected",
    "RequestUnknown",
]

# What a request to Daraja can raise besides an answer (see `Transport`): never a crash,
# always "no answer".
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)

log = structlog.get_logger("pesagate.mpesa")

RAW_MAX_CHARS: Final = 4096
ACCOUNT_REFERENCE_MAX: Final = 12
TRANSACTION_DESC_MAX: Final = 13
PLACEHOLDER_TEXT: Final = "Payment"  # fits both limits; Daraja refuses null or empty fields

# Refresh a token this long before Daraja says it expires (at most 10% of its lifetime).
TOKEN_REFRESH_MARGIN_S: Final = 60.0
# A token answer without a usable `expires_in`: assume a short life rather than the usual 3599 s.
TOKEN_FALLBACK_TTL_S: Final = 600.0

# Envelopes that do not prove the push was refused before reaching M-Pesa: "Internal Server
# Error" can come from behind the proxy, after the request was forwarded. Reported as unknown.
AMBIGUOUS_PUSH_ERRORS: Final = frozenset({ErrorCode.INTERNAL.value})


class DarajaAuthError(Exception):
    """No access token could be obtained. `reason` is readable and free of secrets."""

    def __init__(self, reason: str, *, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status


@dataclass(frozen=True, slots=True)
class DarajaConfig:
    base_url: str  # https://api.safaricom.co.ke, or http://127.0.0.1:8000/sim
    consumer_key: str
    consumer_secret: str = field(repr=False)  # secrets stay out of logs and tracebacks
    shortcode: str
    passkey: str = field(repr=False)
    transaction_type: str = TransactionType.PAYBILL.value  # or CustomerBuyGoodsOnline
    party_b: str | None = None  # the till number for buy goods; default = the shortcode
    timeout_s: float = 30.0
    # Reversal and Transaction Status: the API operator, and the certificate that encrypts its
    # password (PEM or DER). Without a certificate, the sandbox's is fetched from
    # `{base_url}` + SANDBOX_CERTIFICATE_PATH (the simulator serves its own there).
    initiator: str = ""
    initiator_password: str = field(default="", repr=False)
    certificate: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # on the client's monotonic clock


@dataclass(frozen=True, slots=True)
class TokenHealth:
    seconds_to_refresh: float | None  # None: no token held
    last_failure: str | None  # why the last OAuth request failed, if it did
    refreshes: int  # OAuth requests made by this process


@dataclass(frozen=True, slots=True)
class _NoToken:
    reason: str


@dataclass(frozen=True, slots=True)
class _NetworkError:
    reason: str


@dataclass(frozen=True, slots=True)
class _Answer:
    """An HTTP answer reduced to what classification needs."""

    status: int
    raw: str  # the body as text, truncated
    body: Any  # parsed JSON, or None when the body is not JSON

    @property
    def envelope(self) -> tuple[str, str] | None:
        """(errorCode, errorMessage) when the body is Daraja's error envelope."""
        if not isinstance(self.body, dict):
            return None
        code = code_text(self.body.get("errorCode"))
        if code is None:
            return None
        message = self.body.get("errorMessage")
        return code, message if isinstance(message, str) else ""


class DarajaClient:
    """A Daraja client over a shared `Transport` (owned and closed by the caller)."""

    def __init__(
        self,
        config: DarajaConfig,
        http: Transport,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._base = config.base_url.rstrip("/")
        self._basic = "Basic " + base64.b64encode(
            f"{config.consumer_key}:{config.consumer_secret}".encode()
        ).decode("ascii")
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self._refreshes = 0  # OAuth attempts completed so far
        self._last_failure: DarajaAuthError | None = None
        self._public_key: Any = None  # the certificate's RSA key, loaded once
        self._key_lock = asyncio.Lock()

    # --- OAuth ------------------------------------------------------------------------------

    async def access_token(self) -> str:
        """A valid access token: the cached one, or a fresh one (one OAuth request at a time).

        Raises `DarajaAuthError` when Daraja does not hand one out. Callers that waited for a
        refresh that failed share its failure instead of each sending an OAuth request."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        generation = self._refreshes
        async with self._token_lock:
            # Whoever held the lock before us may have refreshed the token already, or failed.
            token = self._token
            if token is not None and self._clock() < token.refresh_at:
                return token.value
            failure = self._last_failure
            if failure is not None and self._refreshes != generation:
                raise DarajaAuthError(failure.reason, http_status=failure.http_status)
            self._last_failure = None
            try:
                token = await self._fetch_token()
            except DarajaAuthError as exc:
                self._last_failure = exc
                raise
            finally:
                self._refreshes += 1
            self._token = token
            return token.value

    def token_health(self) -> "TokenHealth":
        """What the operator's page shows of this process's OAuth token."""
        token = self._token
        left = None if token is None else max(0.0, token.refresh_at - self._clock())
        failure = self._last_failure
        return TokenHealth(left, str(failure) if failure is not None else None, self._refreshes)

    def invalidate_token(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is still `token`, when given)."""
        if self._token is not None and (token is None or self._token.value == token):
            self._token = None

    async def _fetch_token(self) -> _Token:
        started = self._clock()
        try:
            response = await self._http.request(
                "GET",
                self._base + OAUTH_PATH + "?grant_type=client_credentials",
                headers={"Authorization": self._basic, "Accept": "application/json"},
                timeout_s=self.config.timeout_s,
            )
        except TRANSPORT_ERRORS as exc:
            reason = f"OAuth request failed: {_describe_exception(exc)}"
            log.warning("daraja.oauth.failed", reason=reason)
            raise DarajaAuthError(reason) from exc
        status = response.status
        body = _parse_json(response.content)
        if status != 200:
            reason = f"OAuth refused: HTTP {status}"
            envelope = _Answer(status, "", body).envelope
            if envelope is not None:
                reason += f" {envelope[0]} {envelope[1]}".rstrip()
            elif not response.content.strip():
                reason += " with an empty body (bad consumer key or secret?)"
            else:
                reason += f": {_snippet(response.text)}"
            log.warning("daraja.oauth.failed", reason=reason, http_status=status)
            raise DarajaAuthError(reason, http_status=status)
        # A 200 body may carry a token: never echo it into a reason or a log line.
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value.strip():
            reason = "OAuth answered HTTP 200 without an access_token"
            log.warning("daraja.oauth.failed", reason=reason, http_status=status)
            raise DarajaAuthError(reason, http_status=status)
        ttl_s = _seconds(body.get("expires_in"))
        if ttl_s is None:
            ttl_s = TOKEN_FALLBACK_TTL_S
        margin_s = min(TOKEN_REFRESH_MARGIN_S, ttl_s * 0.1)
        log.info("daraja.oauth.token", expires_in_s=ttl_s)
        return _Token(value.strip(), started + ttl_s - margin_s)

    # --- STK push ---------------------------------------------------------------------------

    async def stk_push(
        self,
        *,
        phone_number: str,
        amount: int,
        account_reference: str,
        transaction_desc: str,
        callback_url: str,
    ) -> PushResult:
        """Send one STK push. Never raises for network or server behaviour; never retries
        anything that might have reached M-Pesa."""
        config = self.config
        timestamp = format_timestamp(nairobi_now())
        body = {
            "BusinessShortCode": config.shortcode,
            "Password": stk_password(config.shortcode, config.passkey, timestamp),
            "Timestamp": timestamp,
            "TransactionType": config.transaction_type,
            "Amount": int(amount),
            "PartyA": phone_number,
            "PartyB": config.party_b or config.shortcode,
            "PhoneNumber": phone_number,
            "CallBackURL": callback_url,
            "AccountReference": _bounded_text(account_reference, ACCOUNT_REFERENCE_MAX),
            "TransactionDesc": _bounded_text(transaction_desc, TRANSACTION_DESC_MAX),
        }
        payload = orjson.dumps(body)
        logger = log.bind(phone=mask_msisdn(phone_number), amount=int(amount))

        sent = await self._send(STK_PUSH_PATH, payload, logger, "push")
        if isinstance(sent, _NoToken):
            logger.warning("daraja.push.not_sent", reason=sent.reason)
            return PushNotSent(sent.reason)
        if isinstance(sent, _NetworkError):
            logger.warning("daraja.push.unknown", reason=sent.reason)
            return PushUnknown(sent.reason)
        result = _classify_push(sent)
        _log_push(logger, result)
        return result

    # --- STK query --------------------------------------------------------------------------

    async def stk_query(self, checkout_request_id: str) -> QueryResult:
        """Ask for the result of a push. Never raises for network or server behaviour."""
        config = self.config
        timestamp = format_timestamp(nairobi_now())
        payload = orjson.dumps(
            {
                "BusinessShortCode": config.shortcode,
                "Password": stk_password(config.shortcode, config.passkey, timestamp),
                "Timestamp": timestamp,
                "CheckoutRequestID": checkout_request_id,
            }
        )
        logger = log.bind(checkout_request_id=checkout_request_id)
        sent = await self._send(STK_QUERY_PATH, payload, logger, "query")
        if isinstance(sent, (_NoToken, _NetworkError)):
            logger.warning("daraja.query.error", reason=sent.reason)
            return QueryError(sent.reason)
        result = _classify_query(sent)
        if isinstance(result, QueryError):
            logger.warning("daraja.query.error", reason=result.reason)
        else:
            logger.debug("daraja.query.answer", outcome=type(result).__name__)
        return result

    # --- Pull Transactions (the statement) ---------------------------------------------------

    async def pull_transactions(
        self, start: datetime, end: datetime, *, max_pages: int = MAX_PAGES
    ) -> StatementResult:
        """The shortcode's statement between `start` and `end`, every page (up to `max_pages`).
        Never raises for network or server behaviour; parsing lives in `mpesa/statement.py`."""
        walk = StatementWalk(max_pages)
        while not walk.done:
            payload = query_payload(self.config.shortcode, start, end, walk.offset)
            sent = await self._send(PULL_QUERY_PATH, payload, log, "pull")
            page = (
                StatementError(sent.reason)
                if isinstance(sent, (_NoToken, _NetworkError))
                else parse_page(sent.status, sent.body, sent.raw)
            )
            if isinstance(page, StatementError):
                log.warning("daraja.pull.error", reason=page.reason, offset=walk.offset)
                return page
            walk.add(page)
        return walk.result()

    # --- Reversal and Transaction Status -----------------------------------------------------

    async def reverse(
        self,
        *,
        receipt: str,
        amount: int,
        result_url: str,
        timeout_url: str,
        remarks: str,
        occasion: str | None = None,
    ) -> InitiatorRequest:
        """Ask M-Pesa to reverse a payment (whole shillings, its full amount). The Result comes
        to `result_url`. Never raises; never retries what might have reached M-Pesa."""
        credential = await self.security_credential()
        if isinstance(credential, RequestNotSent):
            return credential
        body = reversal_body(
            initiator=self.config.initiator,
            credential=credential,
            receipt=receipt,
            amount=amount,
            receiver_party=self.config.shortcode,
            result_url=result_url,
            timeout_url=timeout_url,
            remarks=remarks,
            occasion=occasion,
        )
        return await self._initiate(REVERSAL_PATH, body, log.bind(receipt=receipt), "reversal")

    async def transaction_status(
        self, *, receipt: str, result_url: str, timeout_url: str, remarks: str
    ) -> InitiatorRequest:
        """Ask M-Pesa about a transaction by its receipt (a payment, or a reversal). The
        Result comes to `result_url`."""
        credential = await self.security_credential()
        if isinstance(credential, RequestNotSent):
            return credential
        body = status_body(
            initiator=self.config.initiator,
            credential=credential,
            receipt=receipt,
            party_a=self.config.shortcode,
            result_url=result_url,
            timeout_url=timeout_url,
            remarks=remarks,
        )
        logger = log.bind(receipt=receipt)
        return await self._initiate(TRANSACTION_STATUS_PATH, body, logger, "status")

    async def security_credential(self) -> str | RequestNotSent:
        """A fresh SecurityCredential, or why none can be made."""
        if not self.config.initiator or not self.config.initiator_password:
            return RequestNotSent("no initiator configured (PESAGATE_MPESA_INITIATOR)")
        key = await self._certificate_key()
        if isinstance(key, RequestNotSent):
            return key
        return security_credential(self.config.initiator_password, key)

    async def _certificate_key(self) -> Any:
        if self._public_key is not None:
            return self._public_key
        async with self._key_lock:
            if self._public_key is not None:
                return self._public_key
            certificate = self.config.certificate
            if certificate is None:
                fetched = await self._fetch_sandbox_certificate()
                if isinstance(fetched, RequestNotSent):
                    return fetched
                certificate = fetched
            try:
                self._public_key = load_public_key(certificate)
            except CertificateError as exc:
                return RequestNotSent(f"unusable certificate: {exc}")
            return self._public_key

    async def _fetch_sandbox_certificate(self) -> bytes | RequestNotSent:
        try:
            response = await self._http.request(
                "GET",
                self._base + SANDBOX_CERTIFICATE_PATH,
                headers={},
                timeout_s=self.config.timeout_s,
            )
        except TRANSPORT_ERRORS as exc:
            return RequestNotSent(f"no certificate: {_describe_exception(exc)}")
        if response.status != 200:
            return RequestNotSent(f"no certificate: HTTP {response.status}")
        return response.content

    async def _initiate(
        self, path: str, body: dict[str, Any], logger: Any, call: str
    ) -> InitiatorRequest:
        sent = await self._send(path, orjson.dumps(body), logger, call)
        if isinstance(sent, _NoToken):
            logger.warning(f"daraja.{call}.not_sent", reason=sent.reason)
            return RequestNotSent(sent.reason)
        if isinstance(sent, _NetworkError):
            logger.warning(f"daraja.{call}.unknown", reason=sent.reason)
            return RequestUnknown(sent.reason)
        result = _classify_initiator(sent)
        logger.info(f"daraja.{call}.answer", outcome=type(result).__name__)
        return result

    # --- transport --------------------------------------------------------------------------

    async def _send(
        self, path: str, payload: bytes, logger: Any, call: str
    ) -> "_Answer | _NoToken | _NetworkError":
        """POST with a token; when Daraja refuses the token, refresh it and try once more.
        That is the only retry: a refused token means the request never reached M-Pesa."""
        for attempt in (1, 2):
            try:
                token = await self.access_token()
            except DarajaAuthError as exc:
                return _NoToken(f"no access token: {exc.reason}")
            try:
                answer = await self._post(path, payload, token)
            except TRANSPORT_ERRORS as exc:
                return _NetworkError(_describe_exception(exc))
            if attempt == 1 and _token_refused(answer):
                logger.info(f"daraja.{call}.token_refused", http_status=answer.status)
                self.invalidate_token(token)
                continue
            return answer
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

    async def _post(self, path: str, payload: bytes, token: str) -> _Answer:
        response = await self._http.request(
            "POST",
            self._base + path,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=payload,
            timeout_s=self.config.timeout_s,
        )
        return _Answer(response.status, _truncate(response.text), _parse_json(response.content))


# --- classification (pure functions of one answer) ----------------------------------------


def _token_refused(answer: _Answer) -> bool:
    """The API proxy refused the token: the request never reached M-Pesa."""
    envelope = answer.envelope
    if envelope is not None:
        return envelope[0] == ErrorCode.INVALID_TOKEN
    return answer.status == 401


def _classify_push(answer: _Answer) -> PushAccepted | PushRejected | PushUnknown:
    envelope = answer.envelope
    if envelope is not None:
        code, message = envelope
        if code in AMBIGUOUS_PUSH_ERRORS:
            return PushUnknown(f"HTTP {answer.status} {code} {message}".rstrip(), answer.raw)
        return PushRejected(code, message, answer.status, answer.raw)
    if not 200 <= answer.status < 300:
        return PushUnknown(f"HTTP {answer.status} without an error envelope", answer.raw)
    body = answer.body
    if not isinstance(body, dict):
        what = "a non-JSON body" if body is None else "JSON that is not an object"
        return PushUnknown(f"HTTP {answer.status} with {what}", answer.raw)
    response_code = code_text(body.get("ResponseCode"))
    if response_code is None:
        return PushUnknown(f"HTTP {answer.status} without a ResponseCode", answer.raw)
    if response_code != "0":
        description = body.get("ResponseDescription")
        message = description if isinstance(description, str) else ""
        return PushRejected(response_code, message, answer.status, answer.raw)
    merchant_id = body.get("MerchantRequestID")
    checkout_id = body.get("CheckoutRequestID")
    if not (isinstance(checkout_id, str) and checkout_id and isinstance(merchant_id, str)):
        return PushUnknown("accepted without a CheckoutRequestID", answer.raw)
    return PushAccepted(merchant_id, checkout_id, answer.raw)


def _classify_initiator(answer: _Answer) -> InitiatorRequest:
    """A Reversal or Transaction Status acknowledgement. Only an answer that proves the request
    was refused before M-Pesa saw it is a rejection; anything else unclear is unknown."""
    envelope = answer.envelope
    if envelope is not None:
        code, message = envelope
        if code in AMBIGUOUS_PUSH_ERRORS:
            return RequestUnknown(f"HTTP {answer.status} {code} {message}".rstrip(), answer.raw)
        return RequestRejected(code, message, answer.status, answer.raw)
    body = answer.body
    if not 200 <= answer.status < 300 or not isinstance(body, dict):
        return RequestUnknown(f"HTTP {answer.status} without an acknowledgement", answer.raw)
    response_code = code_text(body.get("ResponseCode"))
    if response_code is None:
        return RequestUnknown(f"HTTP {answer.status} without a ResponseCode", answer.raw)
    if response_code != "0":
        description = body.get("ResponseDescription")
        message = description if isinstance(description, str) else ""
        return RequestRejected(response_code, message, answer.status, answer.raw)
    originator = body.get("OriginatorConversationID")
    conversation = body.get("ConversationID")
    if not (isinstance(originator, str) and isinstance(conversation, str) and conversation):
        return RequestUnknown("accepted without a ConversationID", answer.raw)
    return RequestAccepted(originator[:64], conversation[:64], answer.raw)


def _classify_query(answer: _Answer) -> QueryResult:
    envelope = answer.envelope
    if envelope is not None:
        code, message = envelope
        if code == ErrorCode.MERCHANT_OR_SUBSCRIBER:
            lowered = message.casefold()
            if QUERY_PROCESSING_MESSAGE.casefold() in lowered or "under processing" in lowered:
                return QueryPending(answer.raw)
            if QUERY_UNKNOWN_MESSAGE.casefold() in lowered:
                return QueryNotFound(answer.raw)
        return QueryError(f"HTTP {answer.status} {code} {message}".rstrip(), answer.raw)
    if not 200 <= answer.status < 300:
        return QueryError(f"HTTP {answer.status} without an error envelope", answer.raw)
    body = answer.body
    if not isinstance(body, dict):
        what = "a non-JSON body" if body is None else "JSON that is not an object"
        return QueryError(f"HTTP {answer.status} with {what}", answer.raw)
    result_code = code_text(body.get("ResultCode"))
    if result_code is None:
        response_code = code_text(body.get("ResponseCode"))
        return QueryError(f"no ResultCode (ResponseCode {response_code})", answer.raw)
    if result_code == str(ResultCode.STILL_PROCESSING):
        return QueryPending(answer.raw)
    description = body.get("ResultDesc")
    return QueryFinal(result_code, description if isinstance(description, str) else "", answer.raw)


def _log_push(logger: Any, result: PushAccepted | PushRejected | PushUnknown) -> None:
    if isinstance(result, PushAccepted):
        logger.info("daraja.push.accepted", checkout_request_id=result.checkout_request_id)
    elif isinstance(result, PushRejected):
        logger.warning(
            "daraja.push.rejected",
            error_code=result.error_code,
            error_message=result.error_message,
            http_status=result.http_status,
        )
    else:
        logger.warning("daraja.push.unknown", reason=result.reason)


# --- helpers --------------------------------------------------------------------------------


def _parse_json(content: bytes) -> Any:
    if not content.strip():
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


# ASCII digits only: float() also reads exponents and fullwidth or other scripts' digits.
_SECONDS = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,6})?")


def _seconds(value: Any) -> float | None:
    """`expires_in` as a number of seconds: "3599" or 3599; None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _SECONDS.fullmatch(value.strip()):
        seconds = float(value.strip())
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _bounded_text(value: str | None, limit: int) -> str:
    text = (value or "").strip()[:limit].strip()
    return text or PLACEHOLDER_TEXT


def _truncate(text: str) -> str:
    return text if len(text) <= RAW_MAX_CHARS else text[:RAW_MAX_CHARS]


def _snippet(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _describe_exception(exc: BaseException) -> str:
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
