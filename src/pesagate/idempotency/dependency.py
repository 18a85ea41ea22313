"""The `Idempotency-Key` gate as a FastAPI dependency: `await gate.run(principal, handler)`."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from pesagate.db import Database
from pesagate.dependencies import app_db, app_settings
from pesagate.idempotency import service
from pesagate.merchants.auth import Principal


@dataclass
class IdempotencyGate:
    request: Request
    db: Database
    ttl_s: float
    lock_s: float

    async def run(
        self,
        principal: Principal,
        handler: service.Handler,
        resume: service.Resumer | None = None,
    ) -> Response:
        key = self.request.headers.get(service.HEADER)
        # Only a keyed request is compared with an earlier one (building the URL and hashing
        # the body cost ~1.5% of an STK push).
        request_print = (
            service.fingerprint(
                self.request.method, self.request.url.path.rstrip("/"), await self.request.body()
            )
            if key is not None
            else ""
        )
        answer = await service.run_idempotently(
            self.db,
            principal.business_pk,
            key,
            request_print,
            self.ttl_s,
            handler,
            resume,
            self.lock_s,
        )
        return _render(answer)


def _render(answer: service.Answer) -> Response:
    headers = {service.REPLAYED_HEADER: "true"} if answer.replayed else None
    return Response(
        answer.body, status_code=answer.status, headers=headers, media_type="application/json"
    )


async def idempotency_gate(request: Request) -> IdempotencyGate:
    return gate_for(request)


def gate_for(request: Request) -> IdempotencyGate:
    settings = app_settings(request)
    return IdempotencyGate(
        request, app_db(request), settings.idempotency_ttl_s, settings.idempotency_lock_s
    )


Idempotent = Annotated[IdempotencyGate, Depends(idempotency_gate)]
