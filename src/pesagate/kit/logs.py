"""Structured logging: readable console lines by default, one JSON object per line in
production (`PESAGATE_LOG_FORMAT=json`). Standard-library loggers (uvicorn) go through the same
renderer, so a log shipper sees one format."""

import logging
import sys
from typing import Literal

import structlog

LogFormat = Literal["console", "json"]


def configure_logging(
    log_format: LogFormat = "console", level: str = "INFO", *, to_stderr: bool = True
) -> None:
    """Route structlog and stdlib logging through one renderer. `to_stderr=False` leaves the
    output to whatever handlers exist (pytest's capture, in the tests)."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            # Never locals: they hold request headers (API keys), and rendering them took
            # seconds per traceback with the event loop blocked.
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
        )
    )
    structlog.configure(
        # Filter first: a suppressed level then costs almost nothing on hot paths.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if log_format == "json" else _identity,
            renderer,
        ],
    )
    root = logging.getLogger()
    root.setLevel(level)
    if to_stderr:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter)
        root.handlers[:] = [handler]
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One line per outgoing request is noise; our own clients log what matters.
    for name in ("httpx", "httpcore", "aiosqlite", "asyncio"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def _identity(
    _logger: object, _name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    return event_dict
