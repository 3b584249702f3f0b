"""CORS at the edge: only configured origins, preflights answered here (never forwarded), and
no wildcard together with credentials (the settings refuse that at startup)."""

from __future__ import annotations

from gateway.settings import Settings

VARY_ORIGIN = (b"vary", b"Origin")


class PreflightRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CorsPolicy:
    def __init__(self, settings: Settings) -> None:
        self._any_origin = "*" in settings.cors_origins
        self._origins = frozenset(o for o in settings.cors_origins if o != "*")
        self._credentials = settings.cors_allow_credentials
        self._methods = frozenset(m.upper() for m in settings.cors_allow_methods)
        self._any_header = "*" in settings.cors_allow_headers
        self._headers = frozenset(h.lower() for h in settings.cors_allow_headers if h != "*")
        self._allow_methods = ", ".join(sorted(self._methods)).encode()
        self._max_age = str(settings.cors_max_age_seconds).encode()
        expose = ", ".join(settings.cors_expose_headers).encode()
        self._expose = [(b"access-control-expose-headers", expose)] if expose else []
        self.enabled = bool(settings.cors_origins)

    def allows(self, origin: str) -> bool:
        return self._any_origin or origin in self._origins

    def _origin_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        if self._any_origin:
            return [(b"access-control-allow-origin", b"*")]
        headers = [(b"access-control-allow-origin", origin.encode("latin-1")), VARY_ORIGIN]
        if self._credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    def response_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """Headers for an actual (non-preflight) response."""
        if origin is None or not self.enabled:
            return []
        if not self.allows(origin):
            return [VARY_ORIGIN] if not self._any_origin else []
        return self._origin_headers(origin) + self._expose

    def preflight(
        self, origin: str, method: str | None, request_headers: str | None
    ) -> list[tuple[bytes, bytes]]:
        """Headers of the 204 answering a preflight; raises PreflightRefused."""
        if not self.enabled or not self.allows(origin):
            raise PreflightRefused(f"Origin {origin[:100]!r} is not allowed.")
        if method is None or method.upper() not in self._methods:
            raise PreflightRefused(f"Method {str(method)[:20]!r} is not allowed.")
        asked = [h.strip() for h in (request_headers or "").split(",") if h.strip()]
        if not self._any_header:
            refused = [h for h in asked if h.lower() not in self._headers]
            if refused:
                raise PreflightRefused(f"Headers {', '.join(refused)[:200]} are not allowed.")
        headers = self._origin_headers(origin)
        headers += [
            (b"access-control-allow-methods", self._allow_methods),
            (b"access-control-max-age", self._max_age),
        ]
        if asked:
            headers.append((b"access-control-allow-headers", ", ".join(asked).encode("latin-1")))
        if self._any_origin:  # `_origin_headers` names Vary: Origin for listed origins only
            headers.append(VARY_ORIGIN)
        return headers
