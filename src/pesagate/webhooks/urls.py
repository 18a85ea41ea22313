"""Where webhooks may go. Sandbox: any http(s) URL, loopback included. Live: https only, and
never to a private, loopback, link-local or otherwise non-public address - checked when the
endpoint is saved, and again at every delivery on the address actually connected to."""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


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
