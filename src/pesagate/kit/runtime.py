"""Process settings for long-running servers."""

import asyncio
import gc
import socket

# Collections of the youngest generation every 50,000 allocations instead of 700: a request
# allocates thousands of short-lived objects (SQLAlchemy, pydantic), most freed by reference
# counting, so frequent young collections mostly re-scan live framework objects.
GC_THRESHOLDS = (50_000, 20, 100)


class GatewayEventLoop(asyncio.SelectorEventLoop):
    """The event loop uvicorn runs the gateway on: asyncio's own, not uvloop.

    A request's SQLite statements run on the loop without yielding (sqlite_inline.py), so
    under load one loop iteration runs many requests back to back. uvloop holds every write
    until its iteration ends (MagicStack/uvloop#631) and took new connections' first requests
    only one iteration apart: with 16 busy connections their answers waited up to 1.3 s
    (callback p99 5-7x its p50, the tail of issue 17). asyncio writes an answer as soon as it
    is ready (p99 about 1.4x p50).

    TCP_NODELAY is set on every accepted connection: asyncio sets it only when the listening
    socket says IPPROTO_TCP, and the one uvicorn makes for `--workers N` says 0. Without it
    Nagle's algorithm held each answer's second write for the client's delayed ACK, ~40 ms
    (two processes answered 727 requests/s, one 8,235)."""

    def _make_socket_transport(  # type: ignore[no-untyped-def]
        self, sock, protocol, waiter=None, *, extra=None, server=None
    ):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super()._make_socket_transport(  # type: ignore[misc]
            sock, protocol, waiter, extra=extra, server=server
        )


# As uvicorn's `--loop` takes it (an import string of the loop's factory).
EVENT_LOOP = "pesagate.kit.runtime:GatewayEventLoop"


def tune_gc() -> None:
    """Call once the application is built: everything alive now (modules, routes, compiled
    statements) lives as long as the process, so it is frozen out of every later collection.
    Measured with bench/profile.py's setup: status ~870 -> ~970 requests/s in one process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_after_full_collections() -> None:
    """For a process whose live state only grows (the standalone simulator keeps every
    transaction it was sent, its ground truth): after each full collection, what survived is
    frozen out of later ones. Otherwise each full collection re-scans all of it, and the
    pause grows with the state: the simulator answered nothing for 90, 140, then 190 ms
    within a minute of benchmark load, which showed up as the gateway's own tail. What was
    alive at a freeze and later becomes cyclic garbage is never collected: only objects in
    flight at that instant, a few times over the process's life (full collections come each
    time the unfrozen state grows by a quarter)."""
    gc.callbacks.append(_freeze_survivors)


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()
