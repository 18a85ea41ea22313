"""Process settings for long-running servers."""

import gc

# Collections of the youngest generation every 50,000 allocations instead of 700: a request
# allocates thousands of short-lived objects (SQLAlchemy, pydantic), most freed by reference
# counting, so frequent young collections mostly re-scan live framework objects.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Call once the application is built: everything alive now (modules, routes, compiled
    statements) lives as long as the process, so it is frozen out of every later collection.
    Measured with bench/profile.py's setup: status ~870 -> ~970 requests/s in one process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
