"""The `Idempotency-Key` gate as a FastAPI dependency: `await gate.run(principal, handler)`."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import Response

from pesagate.db import Database
from pesagate.dependencies import DbDep, SettingsDep
from pesagate.idempotency import service
from pesagate.merchants.auth import Principal


@dataclass
class IdempotencyGate:
    request: Request
    db: Database
    ttl_s: float

    async def run(
        self, principal: Principal, handler: Callable[[], Awaitable[dict[str, Any]]]
    ) -> Response:
        key = self.request.headers.get(service.HEADER)
        request_print = service.fingerprint(
            self.request.method, self.request.url.path.rstrip("/"), await self.request.body()
        )
        return await service.run_idempotently(
            self.db, principal.business_pk, key, request_print, self.ttl_s, handler
        )


async def idempotency_gate(request: Request, db: DbDep, settings: SettingsDep) -> IdempotencyGate:
    return IdempotencyGate(request, db, settings.idempotency_ttl_s)


Idempotent = Annotated[IdempotencyGate, Depends(idempotency_gate)]
