"""The v1 HTTP edge: API keys, form decoding, idempotency, Stripe's error bodies and headers.

A route is a plain function `(Call) -> dict` registered on a `Routes` (`Routes.retrieve` registers
the plain "fetch by id and render" kind in one line); `Runtime.endpoint` wraps it:
authenticate (`Authorization: Bearer sk_test_…` or Basic), decode the query and form body, replay or
refuse a reused `Idempotency-Key`, run the function under the state lock, answer JSON with a
`Request-Id`, and hand the events the call raised to the webhook dispatcher."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gatehouse_emulators.stripe.domain.render import render_list
from gatehouse_emulators.stripe.domain.state import Emulator, RequestContext
from gatehouse_emulators.stripe.domain.store import Obj, list_params, match_created, new_id, paginate
from gatehouse_emulators.stripe.http.webhooks import Dispatcher
from gatehouse_emulators.stripe.wire.errors import StripeError, authentication, idempotency_mismatch
from gatehouse_emulators.stripe.wire.forms import Params, decode, expand_paths

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Call:
    emu: Emulator
    params: Params
    path: dict[str, str]

    @cached_property
    def expand(self) -> list[str]:
        return expand_paths(self.params)

    def require(self, key: str, object_type: str, kind: str | None = None, param: str = "id") -> Obj:
        """The live object whose id is the path parameter `key`, or Stripe's 404 naming `kind`."""
        return self.emu.store.require(self.path[key], object_type, kind or object_type, param)

    def render(self, obj: Obj) -> Obj:
        return self.emu.render(obj, self.expand)

    def page(self, items: list[Obj], url: str, kind: str) -> Obj:
        page, has_more = paginate(self.emu.store, items, self.params, kind)
        return render_list(self.emu.store, page, has_more, url, self.expand)


Handler = Callable[[Call], Obj]


@dataclass
class Routes:
    entries: list[tuple[str, str, Handler]] = field(default_factory=list)

    def _add(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.entries.append((method, path, handler))
            return handler

        return register

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("GET", path)

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("POST", path)

    def delete(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("DELETE", path)

    def retrieve(
        self,
        path: str,
        object_type: str,
        kind: str | None = None,
        *,
        param: str = "id",
        allow: Sequence[str] = ("expand",),
    ) -> None:
        """`GET path`: the object named by the path's last `{parameter}`, rendered with `expand[]`."""
        key = path.rsplit("{", 1)[1].rstrip("}")

        def retrieve(call: Call) -> Obj:
            call.params.allow(*allow)
            return call.render(call.require(key, object_type, kind, param))

        self._add("GET", path)(retrieve)

    def listing(
        self, path: str, object_type: str, *, by: Sequence[str], accepted: Sequence[str] = ()
    ) -> None:
        """`GET path`: the stored objects of `object_type`, newest first and paged, filtered by
        `created` and by equality on each field in `by` the request names (`accepted` parameters
        are allowed but filter nothing)."""

        def listing(call: Call) -> Obj:
            list_params(call.params, "created", *by, *accepted)
            wanted = {name: value for name in by if (value := call.params.text(name)) is not None}
            created = call.params.timestamp_filter("created")
            items = call.emu.store.all(
                object_type,
                lambda o: (
                    all(o[name] == value for name, value in wanted.items()) and match_created(o, created)
                ),
            )
            return call.page(items, path, object_type)

        self._add("GET", path)(listing)


@dataclass
class StoredAnswer:
    method: str
    path: str
    fingerprint: str
    status: int
    body: Obj
    request_id: str
    created: int


class Runtime:
    """The emulator plus its webhook dispatcher: what every HTTP handler needs."""

    def __init__(self, emu: Emulator, dispatcher: Dispatcher) -> None:
        self.emu = emu
        self.dispatcher = dispatcher

    async def run(self, work: Callable[[], T], context: RequestContext | None = None) -> T:
        """Run a state change under the lock and deliver the events it raised."""
        async with self.emu.lock:
            self.emu.context = context or RequestContext(base_url=self.emu.context.base_url)
            try:
                return work()
            finally:
                self.deliver()

    def deliver(self) -> None:
        events = self.emu.take_outbox()
        for event in events:
            self.emu.check(event, f"event {event['type']}")
        if events:
            self.dispatcher.dispatch(events, self.emu.endpoints())

    def authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        key = ""
        if header.lower().startswith("bearer "):
            key = header[7:].strip()
        elif header.lower().startswith("basic "):
            try:
                key = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            raise authentication(
                "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
            )
        allowed = self.emu.config.api_keys
        if (allowed and key not in allowed) or (not allowed and not key.startswith("sk_test_")):
            shown = key[:8] + "*" * max(4, len(key) - 12) + (key[-4:] if len(key) > 12 else "")
            raise authentication(f"Invalid API Key provided: {shown}")
        return key

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            request_id = new_id("req_", 14)
            headers = {"Request-Id": request_id, "Stripe-Version": self.emu.config.api_version}
            version = request.headers.get("stripe-version")
            status: int = 500
            body: Obj = {}
            try:
                key = self.authenticate(request)
                raw = decode(request.url.query)
                if request.method == "POST":
                    raw.update(decode((await request.body()).decode("utf-8", "replace")))
                idem = request.headers.get("idempotency-key") if request.method == "POST" else None
                if idem:
                    headers["Idempotency-Key"] = idem
                status, body, replayed = await self._execute(request, handler, raw, key, idem, request_id)
                if replayed is not None:
                    headers["Idempotent-Replayed"] = "true"
                    headers["Original-Request"] = replayed
            except StripeError as exc:
                status, body = exc.status, exc.body()
            self._log(request, request_id, version, status)
            self.emu.check(body, f"{request.method} {request.url.path}")
            return JSONResponse(body, status_code=status, headers=headers)

        return serve

    async def _execute(
        self, request: Request, handler: Handler, raw: Obj, key: str, idem: str | None, request_id: str
    ) -> tuple[int, Obj, str | None]:
        fingerprint = json.dumps(raw, sort_keys=True)
        context = RequestContext(request_id, idem, self.base_url(request))
        async with self.emu.lock:
            self.emu.context = context
            if idem:
                stored = self._stored(key, idem)
                if stored is not None:
                    if (stored.method, stored.path, stored.fingerprint) != (
                        request.method,
                        request.url.path,
                        fingerprint,
                    ):
                        raise idempotency_mismatch(idem)
                    return stored.status, stored.body, stored.request_id
            try:
                status, body = 200, handler(Call(self.emu, Params(raw), dict(request.path_params)))
            except StripeError as exc:
                status, body = exc.status, exc.body()
            except Exception:
                log.exception("stripe emulator: %s %s failed", request.method, request.url.path)
                status = 500
                body = {
                    "error": {"type": "api_error", "message": "The Stripe emulator hit an internal error."}
                }
            finally:
                self.deliver()
            if idem and (status == 200 or status == 402):
                self.emu.idempotency[(key, idem)] = StoredAnswer(
                    request.method, request.url.path, fingerprint, status, body, request_id, self.emu.now()
                )
            return status, body, None

    def _stored(self, key: str, idem: str) -> StoredAnswer | None:
        stored = self.emu.idempotency.get((key, idem))
        if stored is None:
            return None
        if (
            not isinstance(stored, StoredAnswer)
            or self.emu.now() - stored.created > self.emu.config.idempotency_ttl
        ):
            del self.emu.idempotency[(key, idem)]
            return None
        return stored

    def base_url(self, request: Request) -> str:
        """Where links the emulator hands out (Checkout, hosted invoices) point: the configured
        public URL, else the one the request came in on."""
        return self.emu.config.public_url or str(request.base_url).rstrip("/")

    def _log(self, request: Request, request_id: str, version: str | None, status: int) -> None:
        self.emu.requests.append(
            {
                "id": request_id,
                "method": request.method,
                "path": request.url.path,
                "stripe_version": version,
                "idempotency_key": request.headers.get("idempotency-key"),
                "status": status,
            }
        )


def register(app: Any, runtime: Runtime, routes: Sequence[Routes]) -> None:
    for group in routes:
        for method, path, handler in group.entries:
            app.add_route(path, runtime.endpoint(handler), methods=[method], include_in_schema=False)
