# syntax=docker/dockerfile:1
# The OAuth emulator (gatehouse-emulators, `gatehouse-oauth-emulator`): Google- and GitHub-like
# sign-in providers (consent page, token, userinfo, JWKS) in memory. Configured by OAUTH_EMULATOR_*
# variables (emulators/README.md).
#
# Build from the repository root, the uv workspace with its lockfile:
#   docker build -f emulators/oauth.Dockerfile -t gatehouse/oauth-emulator .
# The Stripe emulator's image is built the same way from the same package; the build stages are
# identical, so Docker builds them once.

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.11-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /app

# 1. Third-party dependencies: this layer is rebuilt only when uv.lock or this pyproject file change.
COPY pyproject.toml uv.lock ./
COPY emulators/pyproject.toml emulators/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package gatehouse-emulators

# 2. The package itself (editable, uv's default; its templates live next to its modules).
COPY emulators/src emulators/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package gatehouse-emulators

# 3. Bytecode for that code too (uv compiled only the dependencies): the runtime cannot write it,
#    and every start would compile it again.
RUN python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
    emulators/src

FROM python:3.11.11-slim-bookworm
LABEL org.opencontainers.image.title="gatehouse-oauth-emulator"
RUN groupadd --system --gid 10001 gatehouse \
 && useradd --system --uid 10001 --gid gatehouse --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin gatehouse
COPY --from=build /app /app
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
EXPOSE 8090
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8090/healthz', timeout=4)"]
ENTRYPOINT ["/app/.venv/bin/gatehouse-oauth-emulator"]
CMD ["--host", "0.0.0.0", "--port", "8090"]
