"""Domain errors and the one place that turns errors into RFC 9457 problem+json responses."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import aiormq.exceptions
import asyncpg
import redis.exceptions
import sqlalchemy.exc
from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import compile_path

from gatehouse_contracts.problem import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE, Problem

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class DomainError(Exception):
    """An expected failure: carries its HTTP status, a stable problem `type` slug and a title.

    Subclasses set the class attributes; `detail` says what happened this time.
    """

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    # True: the unit of work commits what was done before the error (see `db.session_scope`).
    keeps_changes: ClassVar[bool] = False

    def __init__(
        self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    @classmethod
    def problem_type(cls) -> str:
        return PROBLEM_TYPE_BASE + cls.slug

    @classmethod
    def described(cls) -> str:
        """How the OpenAPI document names this answer: its title and stable problem type."""
        return f"{cls.title} ({cls.problem_type()})"

    @classmethod
    def openapi(cls) -> dict[str, Any]:
        """`responses=` entry so routes declare the errors they raise."""
        return {"model": Problem, "description": cls.described()}


class MalformedBody(DomainError):
    """The body could not be read as what its Content-Type says (JSON that does not parse, bytes
    that are not UTF-8): 400, where well-formed JSON of the wrong shape is a 422."""

    status = 400
    slug = "malformed-body"
    title = "Malformed request body"


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class Unauthorized(DomainError):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}, **extra)


class ReauthenticationRequired(Unauthorized):
    """A sensitive action by a token whose sign-in (`auth_time`) is too old: the client proves it
    is the person again (auth's `POST /auth/reauthenticate`) and retries with the fresh token."""

    slug = "reauthentication-required"
    title = "Sign in again to do this"


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class InsufficientScope(Forbidden):
    """A token exchanged from an API key asked for something its scopes do not allow (RFC 6750
    `insufficient_scope`): a route outside every scope (a password change, more API keys, an admin
    API) is refused to every key."""

    slug = "insufficient-scope"
    title = "The API key's scopes do not allow this"

    def __init__(self, scope: str | None) -> None:
        detail = (
            f"This needs the {scope!r} scope, which this API key does not have."
            if scope is not None
            else "API keys cannot do this: sign in as the person instead."
        )
        challenge = 'Bearer error="insufficient_scope"' + (f', scope="{scope}"' if scope else "")
        super().__init__(detail, headers={"WWW-Authenticate": challenge}, required_scope=scope)


class TooManyRequests(DomainError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(
            detail or "Too many attempts; try again later.", headers={"Retry-After": str(retry_after)}
        )
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"


# Seconds a client is told to wait when a dependency is down: a restarting PostgreSQL or Redis is
# usually back within a few; clients retry with their own back-off after that.
UNAVAILABLE_RETRY_AFTER = 2

_CONNECTION_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
    }
)


def unavailable_dependency(exc: BaseException) -> str | None:
    """Which dependency an exception says is down ("database", "redis", "broker", "upstream"), or
    None when it is no outage (a bug). Follows the chain of causes: SQLAlchemy wraps asyncpg's errors,
    and client libraries wrap the socket's."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.DBAPIError):
            if current.connection_invalidated or isinstance(
                current, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError
            ):
                return "database"
            return None  # a constraint or a data error: the database answered
        if isinstance(
            current,
            sqlalchemy.exc.TimeoutError  # no pooled connection came free in time
            | asyncpg.PostgresConnectionError
            | asyncpg.CannotConnectNowError
            | asyncpg.AdminShutdownError
            | asyncpg.InterfaceError,
        ):
            return "database"
        if isinstance(current, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return "redis"
        if isinstance(current, aiormq.exceptions.AMQPConnectionError):
            return "broker"
        if isinstance(current, ConnectionError | TimeoutError) or (
            isinstance(current, OSError) and current.errno in _CONNECTION_ERRNOS
        ):
            # A refused connect is raised bare, unwrapped: the client library it came through
            # names the dependency.
            return _client_in_traceback(current) or "upstream"
        current = current.__cause__ or current.__context__
    return None


_CLIENT_PACKAGES = {
    "asyncpg": "database",
    "sqlalchemy": "database",
    "redis": "redis",
    "aiormq": "broker",
    "aio_pika": "broker",
}


def _client_in_traceback(exc: BaseException) -> str | None:
    found = None
    tb = exc.__traceback__
    while tb is not None:  # innermost last: the deepest client library wins
        package = str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0]
        found = _CLIENT_PACKAGES.get(package, found)
        tb = tb.tb_next
    return found


def unavailable_response(dependency: str, instance: str | None) -> JSONResponse:
    return problem_response(
        503,
        ServiceUnavailable.title,
        type_=ServiceUnavailable.problem_type(),
        detail=f"A service this request needs ({dependency}) is not answering; try again shortly.",
        instance=instance,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
        dependency=dependency,
    )


def responses(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route from the domain errors it may raise."""
    out: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        entry = out.setdefault(error.status, {"model": Problem, "description": ""})
        entry["description"] = "; ".join(filter(None, [entry["description"], error.described()]))
    return out


def raises(*errors: type[DomainError]) -> Callable[[F], F]:
    """Marks a dependency with the domain errors it may raise (a token check: `Unauthorized`; a
    role check: `Forbidden`; a rate limit: `TooManyRequests`): every operation that depends on it,
    however deeply, lists those answers in the OpenAPI document (`gatehouse_platform.openapi`)."""

    def mark(dependency: F) -> F:
        dependency.__dict__["gatehouse_raises"] = (*declared_errors(dependency), *errors)
        return dependency

    return mark


def declared_errors(dependency: object) -> tuple[type[DomainError], ...]:
    """What `raises()` marked the dependency with (nothing for an unmarked one)."""
    return tuple(getattr(dependency, "gatehouse_raises", ()))


def problem_response(
    status: int,
    title: str,
    *,
    type_: str = "about:blank",
    detail: str | None = None,
    instance: str | None = None,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = Problem(
        type=type_,
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        errors=errors,
        request_id=correlation_id.get(),
        **extra,
    ).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


def _field_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[0] if loc else "request")


def _length_message(error_type: str, ctx: dict[str, Any]) -> str | None:
    """A length the schema states, said as a person reads it (a password's, a name's)."""
    if error_type == "string_too_short":
        least = int(ctx.get("min_length", 0))
        return "Must not be empty." if least == 1 else f"Use at least {least} characters."
    if error_type == "string_too_long":
        return f"Use at most {int(ctx.get('max_length', 0))} characters."
    return None


def validation_errors(exc: RequestValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        msg = str(error.get("msg", "Invalid value"))
        msg = _length_message(str(error.get("type")), dict(error.get("ctx") or {})) or msg
        errors.setdefault(_field_name(tuple(error.get("loc", ()))), msg.removeprefix("Value error, "))
    return errors


CLIENT_CLOSED_REQUEST = 499


def allowed_methods(request: Request) -> str:
    """The `Allow` of a 405: every method of every route on the request's path (FastAPI makes a
    route per operation, and Starlette's 405 lists only the first one's)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        if route.path and route.methods and compile_path(route.path)[0].fullmatch(request.url.path):
            methods |= route.methods
    return ", ".join(sorted(methods))


def install_exception_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem_response(
            exc.status,
            exc.title,
            type_=exc.problem_type(),
            detail=exc.detail,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extra,
        )

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            return await on_domain_error(request, MalformedBody("The request body is not valid JSON."))
        return problem_response(
            422,
            "Validation failed",
            type_=PROBLEM_TYPE_BASE + "validation-failed",
            detail="The request has invalid fields.",
            instance=request.url.path,
            errors=validation_errors(exc),
        )

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        from http import HTTPStatus

        if exc.status_code == 400:  # the framework could not read the body (FastAPI, Starlette)
            return await on_domain_error(request, MalformedBody("The request body could not be read."))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names only the first route matching the path
            headers["Allow"] = allowed_methods(request)

        title = (
            HTTPStatus(exc.status_code).phrase
            if exc.status_code in HTTPStatus._value2member_map_
            else "Error"
        )
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(
            exc.status_code, title, detail=detail, instance=request.url.path, headers=headers
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        dependency = unavailable_dependency(exc)
        if dependency is not None:
            log.warning(
                "dependency unavailable",
                extra={"path": request.url.path, "dependency": dependency, "error": type(exc).__name__},
            )
            return unavailable_response(dependency, request.url.path)
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(500, "Internal server error", instance=request.url.path)

    async def on_client_gone(request: Request, exc: Exception) -> Response:
        # The client left while its body was being read (a half-closed connection): nobody is left
        # to answer, and it is not the server's failure. 499 is nginx's "client closed request".
        log.info("client left before its request was read", extra={"path": request.url.path})
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    app.add_exception_handler(ClientDisconnect, on_client_gone)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    # The outages' own classes go to the handler inside the app (it answers without re-raising, so
    # an outage is a warning, not a traceback); anything else reaches the outermost 500 handler.
    for outage in (
        sqlalchemy.exc.DBAPIError,
        sqlalchemy.exc.TimeoutError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        redis.exceptions.RedisError,
        aiormq.exceptions.AMQPError,
        OSError,
    ):
        app.add_exception_handler(outage, on_unexpected)
    app.add_exception_handler(Exception, on_unexpected)
