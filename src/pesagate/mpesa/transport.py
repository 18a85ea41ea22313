"""How the Daraja client reaches Daraja: one request in, a status and the body's bytes out.

The client needs nothing more of HTTP than that, so it depends on this small `Transport`
protocol rather than on an HTTP library's whole client. The gateway's transport is aiohttp's
connection pool used directly: through httpx's client layer (request building, URL merging,
cookie handling, its response model) over the same pool, that layer was ~20% of an STK push's
CPU (`python -m bench.profile push`). Tests put a scripted Safaricom behind the same protocol.
"""

import ssl
from dataclasses import dataclass
from typing import Protocol

import aiohttp


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    content: bytes

    @property
    def text(self) -> str:
        """The body as text; Daraja answers UTF-8 (JSON, or an HTML error page)."""
        return self.content.decode("utf-8", errors="replace")


class Transport(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes | None = None,
        timeout_s: float,
    ) -> HttpAnswer:
        """Send one request and read its whole answer. Raises what the network raises
        (`aiohttp.ClientError`, `TimeoutError`, `OSError`); never follows redirects."""
        ...


class AiohttpTransport:
    """A pool of keep-alive connections, opened on first use (aiohttp wants a running loop)
    and closed by `aclose`."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
    ) -> None:
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._trace_configs = trace_configs
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes | None = None,
        timeout_s: float,
    ) -> HttpAnswer:
        async with self._http().request(
            method,
            url,
            headers=headers,
            data=body,
            # The whole exchange, connecting included: a server that drips its answer byte by
            # byte cannot hold a push open past it.
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as response:
            return HttpAnswer(response.status, await response.read())

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ssl=self._ssl if self._ssl is not None else True
            )
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, trace_configs=self._trace_configs
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "AiohttpTransport":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
