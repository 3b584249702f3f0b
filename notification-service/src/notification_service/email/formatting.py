"""How amounts and dates read in emails. Amounts arrive in the currency's minor unit (as Stripe
sends them); the number of decimals follows ISO 4217 as Stripe applies it."""

from __future__ import annotations

from datetime import UTC, datetime

# Stripe's zero-decimal currencies, and ISO 4217's three-decimal ones.
_ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
_THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
_SYMBOLS = {
    "usd": "$",
    "cad": "$",
    "aud": "$",
    "nzd": "$",
    "sgd": "$",
    "hkd": "$",
    "mxn": "$",
    "eur": "€",
    "gbp": "£",
    "jpy": "¥",
    "cny": "¥",
    "inr": "₹",
    "krw": "₩",
    "brl": "R$",
}


def minor_unit_exponent(currency: str) -> int:
    code = currency.lower()
    if code in _ZERO_DECIMAL:
        return 0
    if code in _THREE_DECIMAL:
        return 3
    return 2


def format_money(amount: int, currency: str, *, home_currency: str | None = None) -> str:
    """`1200, "usd"` → `$12.00`; `999, "eur"` → `€9.99 EUR`; `1200, "jpy"` → `¥1,200 JPY`;
    `1250, "chf"` → `12.50 CHF` (no symbol of its own).

    The ISO code follows the amount unless the currency is `home_currency`, so amounts in a
    foreign currency that shares a symbol (`$` for USD, CAD, AUD…) are never ambiguous.
    """
    code = currency.lower()
    exponent = minor_unit_exponent(code)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    number = f"{whole:,}" + (f".{fraction:0{exponent}d}" if exponent else "")
    symbol = _SYMBOLS.get(code, "")
    text = f"{sign}{symbol}{number}"
    if code != (home_currency or "").lower() or not symbol:
        text += f" {code.upper()}"
    return text


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def format_date(value: datetime) -> str:
    """`24 November 2026` (UTC): unambiguous in every locale."""
    moment = _utc(value)
    return f"{moment.day} {moment:%B %Y}"


def format_datetime(value: datetime) -> str:
    """`24 November 2026, 17:42 UTC`."""
    moment = _utc(value)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"
