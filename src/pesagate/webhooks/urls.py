"""Where webhooks may go. Sandbox: any http(s) URL, loopback included. Live: https only, and
never to a private, loopback, link-local or otherwise non-public address - checked when the
endpoint is saved, and again at every delivery on the address actually connected to."""

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult


class UnsafeDestination(Exception):
    """The URL may not receive webhooks here."""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return ip.is_global and not ip.is_multicast


def check_url_syntax(url: str, live: bool) -> str:
    """The host of an acceptable URL, or UnsafeDestination."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UnsafeDestination("Enter a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestination("Enter a valid http(s) URL.")
    if live and parts.scheme != "https":
        raise UnsafeDestination("Live webhooks must use https.")
    if parts.username or parts.password:
        raise UnsafeDestination("URLs with credentials are not accepted.")
    return parts.hostname


async def check_destination(url: str, live: bool) -> None:
    """Raise UnsafeDestination unless `url` may receive webhooks (resolving its host in live)."""
    host = check_url_syntax(url, live)
    if not live:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise UnsafeDestination(f"The host {host} does not resolve.") from None
    addresses = {info[4][0] for info in infos}
    if not addresses or not all(is_public_address(str(address)) for address in addresses):
        raise UnsafeDestination("The URL resolves to a private, loopback or link-local address.")


class PublicOnlyResolver(AbstractResolver):
    """An aiohttp resolver that refuses non-public addresses, so a DNS answer that changed
    since the endpoint was saved cannot steer a delivery into the private network."""

    def __init__(self) -> None:
        self._resolver = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: Any = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            if not is_public_address(result["host"]):
                raise OSError(f"refusing to connect to non-public address {result['host']}")
        return results

    async def close(self) -> None:
        await self._resolver.close()
