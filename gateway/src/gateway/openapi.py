"""One OpenAPI document for the whole API: every upstream's `/openapi.json`, fetched and cached,
merged into one. Only paths the gateway routes are kept (not Stripe's webhook). A schema name two
services define differently is renamed `<upstream>_<Name>` in the second one, with its `$ref`s.
An upstream that is down keeps its last fetched document; one never fetched is listed in
`x-gatehouse-unavailable` and the rest of the document is served anyway.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from gatehouse_platform.errors import Forbidden, ServiceUnavailable, TooManyRequests, Unauthorized
from gatehouse_platform.openapi import add_answers
from gateway.edge import BadRequest
from gateway.proxy import BadGateway, BodyTooLarge, Upstream, UpstreamTimeout
from gateway.routing import RouteTable
from gateway.settings import Access, RateLimitRule, Settings
from gateway.transport.http1 import UpstreamError

log = logging.getLogger(__name__)

REF_PREFIX = "#/components/schemas/"
MISSING_RETRY_SECONDS = 5.0  # an upstream never fetched is tried again this soon
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
                name = value[len(REF_PREFIX) :]
                out[key] = REF_PREFIX + renames.get(name, name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def merge_documents(
    documents: Mapping[str, dict[str, Any]], table: RouteTable, *, title: str, version: str
) -> dict[str, Any]:
    """Merge the upstreams' documents (name → document), keeping what the gateway routes there."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every Gatehouse service's API as the gateway serves it. Errors are RFC 9457 "
            "problem details. Operations marked with a lock are refused at the edge (401) "
            "without a valid access token.",
        },
        "paths": {},
        "components": {
            "schemas": {},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "tags": [],
    }
    schemas: dict[str, Any] = merged["components"]["schemas"]
    seen_tags: set[str] = set()
    for upstream, original in documents.items():
        their_schemas: dict[str, Any] = original.get("components", {}).get("schemas", {})
        renames = {
            name: f"{upstream}_{name}"
            for name, schema in their_schemas.items()
            if name in schemas and schemas[name] != schema
        }
        document = _rewrite_refs(copy.deepcopy(original), renames) if renames else original
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            schemas.setdefault(renames.get(name, name), schema)
        for path, item in document.get("paths", {}).items():
            if table.upstream_for(path) != upstream or table.is_blocked(path) or path in merged["paths"]:
                continue
            merged["paths"][path] = _secure(item, path, table)
        for tag in document.get("tags", []):
            if isinstance(tag, dict) and tag.get("name") not in seen_tags:
                seen_tags.add(str(tag.get("name")))
                merged["tags"].append(tag)
    if not merged["tags"]:
        del merged["tags"]
    return merged


def _secure(item: dict[str, Any], path: str, table: RouteTable) -> dict[str, Any]:
    """Mark the operations the edge refuses without a token, and add what the edge may answer
    itself; the upstream's document (cached) is left as it is."""
    out = dict(item)
    for method, operation in item.items():
        if method in HTTP_METHODS and isinstance(operation, dict):
            access = table.access_for(method.upper(), path)
            edged = copy.deepcopy(operation)
            if access != "public":
                edged["security"] = [{"bearerAuth": []}]
            add_answers(edged, edge_answers(operation, access, table.rate_limit_for(method.upper(), path)))
            out[method] = edged
    return out


def edge_answers(
    operation: dict[str, Any], access: Access, rate_limit: RateLimitRule | None
) -> dict[int, str]:
    """What the edge answers for an operation before (or instead of) its upstream: a path it
    refuses (400), a body too large (413), its token check (401, 403 for admin routes), its rate
    limit (429), and an upstream failing (502, 503, 504)."""
    answers = {BadRequest.status: BadRequest.described()}
    if "requestBody" in operation:
        answers[BodyTooLarge.status] = BodyTooLarge.described()
    if access != "public":
        answers[Unauthorized.status] = f"{Unauthorized.described()}, at the edge"
    if access == "admin":
        answers[Forbidden.status] = f"{Forbidden.described()}, at the edge"
    if rate_limit is not None:
        answers[TooManyRequests.status] = f"{TooManyRequests.described()}, rule {rate_limit.name!r}"
    for error in (BadGateway, ServiceUnavailable, UpstreamTimeout):
        answers[error.status] = error.described()
    return answers


class OpenAPIAggregator:
    """The merged document, built again only when the upstreams' documents are fetched again."""

    def __init__(self, settings: Settings, upstreams: Mapping[str, Upstream], table: RouteTable) -> None:
        self._settings = settings
        self._upstreams = upstreams
        self._table = table
        self._cache: dict[str, dict[str, Any]] = {}  # last good document per upstream
        self._merged: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _fetch(self, upstream: Upstream) -> dict[str, Any] | None:
        path = upstream.config.openapi_path
        if path is None:
            return None
        try:
            status, body = await upstream.get(path, within=self._settings.openapi_fetch_timeout_seconds)
            if status != 200:
                raise ValueError(f"status {status}")
            document = json.loads(body)
        except (UpstreamError, TimeoutError, ValueError) as exc:
            log.warning(
                "OpenAPI fetch failed", extra={"upstream": upstream.name, "error": type(exc).__name__}
            )
            return None
        return document if isinstance(document, dict) else None

    async def document(self) -> dict[str, Any]:
        async with self._lock:
            max_age = self._settings.openapi_cache_seconds
            if len(self._cache) < len(self._upstreams):
                max_age = min(max_age, MISSING_RETRY_SECONDS)
            if self._merged is None or time.monotonic() - self._fetched_at >= max_age:
                upstreams = list(self._upstreams.values())
                results = await asyncio.gather(*(self._fetch(u) for u in upstreams))
                for upstream, document in zip(upstreams, results, strict=True):
                    if document is not None:
                        self._cache[upstream.name] = document
                self._fetched_at = time.monotonic()
                self._merged = self._merge()
            return self._merged

    def _merge(self) -> dict[str, Any]:
        merged = merge_documents(
            {name: self._cache[name] for name in self._upstreams if name in self._cache},
            self._table,
            title="Gatehouse API",
            version="0.1.0",
        )
        missing = sorted(set(self._upstreams) - set(self._cache))
        if missing:
            merged["x-gatehouse-unavailable"] = missing
        return merged


def openapi_router(aggregator: OpenAPIAggregator) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json")
    async def openapi() -> JSONResponse:
        return JSONResponse(await aggregator.document())

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Gatehouse API")

    return router
