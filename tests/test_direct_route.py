"""`kit.api.DirectRoute`: routes whose endpoint takes the Request (and plain `str` path
parameters) and answers a Response skip FastAPI's per-request handler; every other route,
and every route included with dependencies of its own, keeps it. Served by uvicorn."""

from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request

from pesagate.app import create_app
from pesagate.config import Settings
from pesagate.errors import NotAuthenticated
from pesagate.http import install_error_handlers
from pesagate.kit.api import DirectRoute, routes_on
from pesagate.kit.asgi import add_routes
from pesagate.kit.jsonutil import JSONBytesResponse
from tests.fixtures.servers import UvicornThread


async def refuse(request: Request) -> None:
    raise NotAuthenticated("Refused by the router's dependency.")


def sample_app() -> FastAPI:
    router = APIRouter(route_class=DirectRoute)
    routes = routes_on(router)

    @router.post("/echo/{token}")
    async def echo(token: str, request: Request) -> JSONBytesResponse:
        return JSONBytesResponse({"token": token, "body": (await request.body()).decode()})

    @routes("POST", "/answers/", answers=dict[str, Any])
    async def answers(request: Request) -> dict[str, Any]:
        return {"query": request.url.query}

    @routes("POST", "/fails/", answers=None)
    async def fails(request: Request) -> JSONBytesResponse:
        raise NotAuthenticated("Refused by the endpoint.")

    @router.post("/counted/{number}")
    async def counted(number: int, request: Request) -> JSONBytesResponse:
        return JSONBytesResponse({"number": number})

    @router.post("/with-dependency")
    async def with_dependency(
        request: Request, _: Annotated[None, Depends(refuse)]
    ) -> JSONBytesResponse:
        return JSONBytesResponse({"reached": True})

    @router.post("/plain/{token}")
    def plain(token: str, request: Request) -> JSONBytesResponse:
        return JSONBytesResponse({"token": token})

    guarded = APIRouter(route_class=DirectRoute)

    @guarded.post("/guarded")
    async def guarded_route(request: Request) -> JSONBytesResponse:
        return JSONBytesResponse({"reached": True})

    app = FastAPI()
    install_error_handlers(app)
    add_routes(app, router)  # as the gateway adds its routers
    app.include_router(guarded, dependencies=[Depends(refuse)])
    return app


@pytest.fixture
def served(monkeypatch):
    """The sample app, with FastAPI's dependency solving counted."""
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    with UvicornThread(sample_app()) as server, httpx.Client(base_url=server.url) as client:
        yield client, solved


def test_a_direct_route_gets_its_path_parameter_and_body_without_fastapis_handler(served):
    client, solved = served
    answer = client.post("/echo/tok_123", content=b"hello")
    assert answer.status_code == 200
    assert answer.json() == {"token": "tok_123", "body": "hello"}
    assert solved == []


def test_a_body_the_handler_returns_is_sent_as_json(served):
    client, solved = served
    answer = client.post("/answers/?a=1")
    assert (answer.status_code, answer.json()) == (200, {"query": "a=1"})
    assert answer.headers["content-type"] == "application/json"
    assert solved == []


def test_an_error_raised_in_a_direct_route_gets_its_documented_answer(served):
    client, solved = served
    answer = client.post("/fails/")
    assert (answer.status_code, answer.json()) == (401, {"detail": "Refused by the endpoint."})
    assert solved == []


def test_a_converted_path_parameter_keeps_fastapis_validation(served):
    client, solved = served
    assert client.post("/counted/7").json() == {"number": 7}
    assert client.post("/counted/seven").status_code == 400
    assert solved == ["/counted/7", "/counted/seven"]


def test_dependencies_of_a_route_and_of_its_inclusion_still_run(served):
    client, solved = served
    for path in ("/with-dependency", "/guarded"):
        answer = client.post(path)
        assert answer.status_code == 401, path
        assert answer.json() == {"detail": "Refused by the router's dependency."}
    assert solved == ["/with-dependency", "/guarded"]


def test_the_gateways_hot_routes_are_direct(tmp_path):
    app = create_app(
        Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/routes.db"), run_worker=False
    )
    direct = {
        route.path for route in app.routes if isinstance(route, DirectRoute) and route._is_direct()
    }
    assert {
        "/api/v1/payment/status/",
        "/api/v1/payment/mpesa-stk-push/",
        "/api/v1/payment/collection/",
        "/callbacks/stk/{token}",
    } <= direct


def test_a_plain_function_keeps_fastapis_handler(served):
    client, solved = served
    answer = client.post("/plain/tok_9")
    assert (answer.status_code, answer.json()) == (200, {"token": "tok_9"})
    assert solved == ["/plain/tok_9"]
