"""What the hosted pages share: the Jinja2 environment (autoescape: every value shown comes from API
input), amounts as people read them, and the page for an unknown id."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, Response

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def money(amount: int, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency.lower())
    value = f"{amount / 100:,.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


def not_found(what: str) -> Response:
    return HTMLResponse(f"<h1>No such {what}</h1>", status_code=404)
