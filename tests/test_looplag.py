"""The loop-lag monitor the fuzz run relies on (tests/fixtures/looplag.py): it counts work done
on the loop, and neither a thread that was not running nor garbage collection."""

import asyncio
import gc
import time

from tests.fixtures.looplag import LoopLagMonitor


def watch(hold) -> LoopLagMonitor:
    async def main() -> LoopLagMonitor:
        monitor = LoopLagMonitor()
        monitor.start()
        await asyncio.sleep(0.05)
        hold()
        await asyncio.sleep(0.05)
        monitor.stop()
        return monitor

    return asyncio.run(main())


def test_cpu_work_on_the_loop_is_held_time():
    def compute() -> None:
        until = time.thread_time() + 0.3  # 0.3 s of this thread's CPU, however loaded the host
        while time.thread_time() < until:
            pass

    monitor = watch(compute)
    assert monitor.worst_held_s >= 0.25, monitor.report()


def test_a_thread_that_waits_is_late_but_not_held():
    monitor = watch(lambda: time.sleep(0.3))  # as if descheduled: no CPU used
    assert monitor.worst_late_s >= 0.25 and monitor.worst_held_s < 0.1, monitor.report()


def test_garbage_collection_is_reported_apart():
    objects = [[n] for n in range(1_000_000)]  # a full collection has them all to scan
    monitor = watch(gc.collect)
    del objects
    assert monitor.worst_gc_s >= 0.02, monitor.report()
    assert monitor.worst_held_s < monitor.worst_gc_s / 2, monitor.report()
