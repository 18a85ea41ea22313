"""HTTP plumbing every domain's router shares: route registration with and without the
trailing slash, declared answers sent without re-validation, OpenAPI for bodies validated by
hand, and DRF-style validation errors."""

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, get_type_hints

from fastapi import APIRouter
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

    return endpoint


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
