"""An open-loop load generator: requests leave on a fixed schedule, whatever the server does.

wrk is closed-loop (a connection sends its next request when the last one answered), so it
cannot hold a rate below the peak, and a stalled server slows it down instead of piling up
work. For "p99 at half of the peak rate" we need the schedule: request i leaves at
start + i / rate, and its latency counts from that scheduled moment (so a server stall is
charged to every request it delayed, not hidden: no coordinated omission).

At the rates it is used for (tens to hundreds of requests per second) this costs a few percent
of one core; the peak rates themselves are measured with wrk.
"""

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import orjson


@dataclass
class PacedResult:
    rate: float  # requests per second asked for
    achieved_rps: float  # answered per second over the run
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # transport errors and non-2xx answers


async def run_paced(
    url: str,
    body_for: Callable[[int], dict[str, object]],
    headers: dict[str, str],
    rate: float,
    seconds: float,
    max_in_flight: int = 1_000,
) -> PacedResult:
    total = max(1, int(rate * seconds))
    latencies: list[float] = []
    errors = 0
    in_flight = asyncio.Semaphore(max_in_flight)
    connector = aiohttp.TCPConnector(limit=max_in_flight)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:

        async def one(index: int, scheduled: float) -> None:
            nonlocal errors
            async with in_flight:
                try:
                    async with session.post(
                        url, data=orjson.dumps(body_for(index)), headers=headers
                    ) as response:
                        await response.read()
                        ok = 200 <= response.status < 300
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
            latencies.append(time.perf_counter() - scheduled)
            errors += not ok

        start = time.perf_counter() + 0.05
        tasks = []
        for index in range(total):
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    latencies.sort()
    return PacedResult(
        rate=rate,
        achieved_rps=len(latencies) / elapsed,
        p50_ms=_percentile(latencies, 50) * 1000,
        p99_ms=_percentile(latencies, 99) * 1000,
        requests=len(latencies),
        errors=errors,
    )


def _percentile(sorted_values: list[float], percent: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(percent / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


def paced_stk_push(
    base_url: str, secret_key: str, rate: float, seconds: float, phone_prefix: str
) -> PacedResult:
    """STK pushes at `rate` per second, each to a distinct number `2547<prefix><index>`."""
    width = 8 - len(phone_prefix)

    def body(index: int) -> dict[str, object]:
        return {
            "phone_number": f"2547{phone_prefix}{index % 10**width:0{width}d}",
            "amount": 100,
            "api_ref": "bench",
        }

    # The generator's own pauses would hold requests back and be charged to the server: this
    # process holds the benchmark's seed data, and a full collection of it took ~100 ms. The
    # run's garbage is freed by reference counting; collecting waits until it is over.
    gc.collect()
    gc.disable()
    try:
        return asyncio.run(
            run_paced(
                f"{base_url}/api/v1/payment/mpesa-stk-push/",
                body,
                {"Authorization": f"Bearer {secret_key}", "Content-Type": "application/json"},
                rate,
                seconds,
            )
        )
    finally:
        gc.enable()
