"""A JSON answer the browser saves as a file (a person's data export): its headers, and how the
OpenAPI document describes them, in one place for every service that offers one."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def download_headers(filename: str) -> dict[str, str]:
    """`Content-Disposition: attachment` under `filename`, never cached (it is personal data)."""
    return {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}


def dated_filename(stem: str, at: datetime, extension: str = "json") -> str:
    """`gatehouse-account-2026-12-03.json`: what it is and when it was made."""
    return f"{stem}-{at:%Y-%m-%d}.{extension}"


def download_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the 200 of a download: the body's schema comes from the route's
    response model, the headers from here."""
    return {
        200: {
            "description": description,
            "headers": {
                "Content-Disposition": {
                    "description": 'attachment; filename="…": browsers save the answer as a file',
                    "schema": {"type": "string"},
                },
                "Cache-Control": {"description": "no-store", "schema": {"type": "string"}},
            },
        }
    }
