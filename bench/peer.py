"""The Django peer (`bench/peer/`): a shop on mainfinity-django-mpesa, served by gunicorn with
one sync worker, in a venv of its own (`bench/.peer-venv`, made on first use) so that Django
never enters pesagate's environment."""

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import HERE, process

PEER_DIR = HERE / "peer"
VENV = HERE / ".peer-venv"
REQUIREMENTS = PEER_DIR / "requirements.txt"


def python() -> str:
    """The peer venv's interpreter, (re)installed when requirements.txt changed."""
    stamp = VENV / ".installed"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != wanted:
        if not (VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
            check=True,
        )
        stamp.write_text(wanted)
    return str(VENV / "bin" / "python")


def _env(db_path: Path, daraja_url: str, port: int) -> dict[str, str]:
    return {
        "PEER_DB": str(db_path),
        "PEER_DARAJA_URL": daraja_url,
        "PEER_URL": f"http://127.0.0.1:{port}",
        "DJANGO_SETTINGS_MODULE": "peer_shop.settings",
    }


def manage(db_path: Path, daraja_url: str, port: int, *args: str) -> None:
    subprocess.run(
        [python(), "manage.py", *args],
        cwd=PEER_DIR,
        env=_env(db_path, daraja_url, port),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def prepare(db_path: Path, daraja_url: str, port: int, pending: int, callbacks: Path) -> None:
    """Migrate, then store `pending` PENDING transactions (the callbacks' targets) and 1,000
    settled ones (the status reads'), as the shop's own STK push would have."""
    manage(db_path, daraja_url, port, "migrate", "--verbosity", "0")
    seed = ("seed_pending", str(pending), str(callbacks), "--completed", "1000")
    manage(db_path, daraja_url, port, *seed)


def settled_ids(pending: int, count: int) -> list[str]:
    """CheckoutRequestIDs of settled transactions that `prepare` stored (after the pending)."""
    return [f"ws_CO_peer{n:012d}" for n in range(pending, pending + count)]


@contextmanager
def serve(db_path: Path, daraja_url: str, port: int) -> Iterator[Any]:
    args = [
        python(),
        "-m",
        "gunicorn",
        "--workers",
        "1",
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(PEER_DIR),
        "--log-level",
        "warning",
        "peer_shop.wsgi",
    ]
    with process(
        args,
        env=_env(db_path, daraja_url, port),
        up_url=f"http://127.0.0.1:{port}/payments/ws_CO_peer000000000000/",
    ) as proc:
        yield proc
