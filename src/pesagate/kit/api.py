"""HTTP plumbing every domain's router shares: route registration with and without the
trailing slash, declared answers sent without re-validation, routes called without FastAPI's
per-request handler where it has nothing to do (`DirectRoute`), OpenAPI for bodies validated
by hand, and DRF-style validation errors."""

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, get_type_hints

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute, _effective_route_context_var  # private: DirectRoute
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from pesagate.errors import ValidationFailed
from pesagate.kit.jsonutil import JSONBytesResponse
from pesagate.openapi import IDEMPOTENCY_PARAMETER

M = TypeVar("M", bound=BaseModel)


def routes_on(router: APIRouter) -> Callable[..., Callable[[Callable[..., Any]], Any]]:
    """A decorator factory registering a handler on each path, with and without the trailing
    slash; only the first path appears in the OpenAPI schema.

    `answers` is the type of the success body (None: the route answers no body), declared in
    the document for the route's status code. The handler returns that body, which is sent as
    orjson bytes, or a Response of its own; FastAPI neither validates nor re-encodes it. A
    handler annotated with a body type must name `answers`, so that mypy checks the body the
    handler builds against the declared one."""

    def routes(
        method: str, *paths: str, answers: type[Any] | None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Any]:
        status_code = kwargs.setdefault("status_code", 200)
        kwargs.setdefault("response_class", JSONBytesResponse)
        kwargs["response_model"] = None  # no inference from the handler's return annotation
        if answers is not None:
            kwargs["responses"] = {status_code: {"model": answers}, **kwargs.get("responses", {})}

        def register(handler: Callable[..., Awaitable[Any]]) -> Any:
            _check_declared(handler, answers)
            endpoint = _sent_as_json(handler, status_code)
            for index, path in enumerate(paths):
                for variant in (path, path.rstrip("/")):
                    documented = index == 0 and variant == path
                    router.add_api_route(
                        variant,
                        endpoint,
                        methods=[method],
                        include_in_schema=documented,
                        route_class_override=DirectRoute,
                        # Response models only document: FastAPI builds a validator for each,
                        # in every app it is included in (~2 ms each), and never uses it here.
                        **(kwargs if documented else {**kwargs, "responses": {}}),
                    )
            return handler

        return register

    return routes


def _check_declared(handler: Callable[..., Any], answers: type[Any] | None) -> None:
    returns = get_type_hints(handler).get("return")
    if isinstance(returns, type) and issubclass(returns, Response):
        return
    if returns != answers:
        raise TypeError(f"{handler.__qualname__} returns {returns} but declares {answers}")


def _sent_as_json(
    handler: Callable[..., Awaitable[Any]], status_code: int
) -> Callable[..., Awaitable[Response]]:
    """The handler, answering a body it returns as orjson bytes: FastAPI would validate it
    against the return annotation and encode it again."""

    @functools.wraps(handler)  # FastAPI reads the handler's parameters through __wrapped__
    async def endpoint(*args: Any, **kwargs: Any) -> Response:
        answer = await handler(*args, **kwargs)
        if isinstance(answer, Response):
            return answer
        return JSONBytesResponse(answer, status_code)

    setattr(endpoint, _ANSWERS_A_RESPONSE, True)
    return endpoint


_ANSWERS_A_RESPONSE = "pesagate_answers_a_response"


class DirectRoute(APIRoute):
    """A route whose endpoint takes the Request (and plain `str` path parameters) and answers
    a Response is called directly. FastAPI's handler would still, on every request, build a
    Response for dependencies to set headers on, parse the query string, the headers and the
    cookies, and look for telemetry: ~12% of a status request (`bench.profile status`).
    Every other route (dependencies, validated parameters, a body model, an answer to
    encode) keeps FastAPI's handler, as does any route included with `include_router`, whose
    inclusion may add dependencies of its own."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if _effective_route_context_var.get() is not None or not self._is_direct():
            return super().get_route_handler()
        endpoint, request_name = self.endpoint, self.dependant.request_param_name
        assert request_name is not None
        path_names = [(field.name, field.alias) for field in self.dependant.path_params]

        async def handler(request: Request) -> Response:
            arguments: dict[str, Any] = {
                name: request.path_params[alias] for name, alias in path_names
            }
            arguments[request_name] = request
            answer: Response = await endpoint(**arguments)
            return answer

        return handler

    def _is_direct(self) -> bool:
        dependant = self.dependant
        return (
            dependant.request_param_name is not None
            and not (
                dependant.dependencies
                or dependant.query_params
                or dependant.header_params
                or dependant.cookie_params
                or dependant.body_params
                or dependant.websocket_param_name
                or dependant.http_connection_param_name
                or dependant.response_param_name
                or dependant.background_tasks_param_name
                or dependant.security_scopes_param_name
            )
            and all(_is_plain_str(field) for field in dependant.path_params)
            and inspect.iscoroutinefunction(self.endpoint)  # FastAPI runs others in a thread
            and _answers_a_response(self.endpoint)
        )


def _is_plain_str(field: Any) -> bool:
    """A path parameter FastAPI would pass on unchanged: `str`, with no constraints."""
    return field.field_info.annotation is str and not field.field_info.metadata


def _answers_a_response(endpoint: Callable[..., Any]) -> bool:
    if getattr(endpoint, _ANSWERS_A_RESPONSE, False):
        return True
    returns = get_type_hints(endpoint).get("return")
    return isinstance(returns, type) and issubclass(returns, Response)


def body_schema(model: type[Any], *, idempotent: bool = False) -> dict[str, Any]:
    """OpenAPI for a body that is validated by hand (with context) rather than by FastAPI;
    `idempotent`: the route takes an Idempotency-Key."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    extra: dict[str, Any] = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}
    }
    if idempotent:
        extra["parameters"] = [IDEMPOTENCY_PARAMETER]
    return extra


def validate_body(model: type[M], body: dict[str, Any], context: object = None) -> M:
    """Validate or raise `ValidationFailed` with every bad field."""
    try:
        return model.model_validate(body, context=context)
    except ValidationError as exc:
        raise ValidationFailed(drf_errors(exc)) from None


def drf_errors(exc: ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "non_field_errors"
        if error["type"] == "missing":
            message = "This field is required."
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        errors.setdefault(field, []).append(message)
    return errors
