"""Structured logging: readable console lines by default, one JSON object per line in
production (`PESAGATE_LOG_FORMAT=json`). Standard-library loggers (uvicorn) go through the same
renderer, so a log shipper sees one format.

Tracebacks are formatted by the standard library's `traceback` module in every format. Logging
runs on the event loop, so a rendering that takes long (rich's, with syntax highlighting and
frame boxes) would hold up every other request for as long as it runs."""

import logging
import sys
from typing import Literal

import structlog

LogFormat = Literal["console", "json"]

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(
    log_format: LogFormat = "console", level: str = "INFO", *, to_stderr: bool = True
) -> None:
    """Route structlog and stdlib logging through one renderer. `to_stderr=False` leaves the
    output to whatever handlers exist (pytest's capture, in the tests)."""
    structlog.configure(
        # Filter first: a suppressed level then costs almost nothing on hot paths.
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.setLevel(level)
    if to_stderr:
        handler = logging.StreamHandler()
        handler.setFormatter(log_formatter(log_format))
        root.handlers[:] = [handler]
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One line per outgoing request is noise; our own clients log what matters.
    for name in ("httpx", "httpcore", "aiosqlite", "asyncio"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def log_formatter(log_format: LogFormat) -> logging.Formatter:
    """The stdlib formatter that renders structlog events and foreign records alike."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            # Plain text, never locals: they hold request headers (API keys).
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # The standard library's `traceback` formatting, into the event's `exception`.
            structlog.processors.format_exc_info if log_format == "json" else _identity,
            renderer,
        ],
    )


def _identity(
    _logger: object, _name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    return event_dict
