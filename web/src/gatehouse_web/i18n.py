"""Translations (gettext catalogues through Babel) and the choice of a person's language.

The catalogues are the `.po` files under `locale/`, compiled in memory when the app starts, so a
fresh clone needs no build step and no compiled `.mo` file is committed. The language is the
profile's `locale` when the person is signed in and has one we speak, else the best match of
Accept-Language, else WEB_DEFAULT_LOCALE. Dates, times and money are written here too, in the
person's language and the profile's time zone (the one module that formats with Babel)."""

from __future__ import annotations

import gettext
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, get_currency_precision

from gatehouse_web.settings import LOCALES

LOCALE_DIR = Path(__file__).parent / "locale"


@cache
def translations(locale: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _language(tag: str) -> str | None:
    try:
        return Locale.parse(tag.strip().replace("-", "_")).language
    except (ValueError, UnknownLocaleError):
        return None


def choose_locale(profile_locale: str | None, accept_language: str | None, default: str) -> str:
    if profile_locale:
        language = _language(profile_locale)
        if language in LOCALES:
            return language
    if accept_language:
        ranked: list[tuple[float, int, str]] = []
        for position, item in enumerate(accept_language.split(",")[:20]):
            tag, _, params = item.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    continue
            if tag and tag != "*" and quality > 0:
                ranked.append((-quality, position, tag))
        for _, _, tag in sorted(ranked):
            language = _language(tag)
            if language in LOCALES:
                return language
    return default


def profile_zone(user: dict[str, Any]) -> ZoneInfo | None:
    """The profile's time zone, if it names one this machine knows."""
    name = (user.get("profile") or {}).get("timezone")
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def moment(value: Any, locale: str, zone: ZoneInfo | None = None) -> str:
    """An API timestamp (ISO 8601) as a date and time, in `zone` when given."""
    return format_datetime(datetime.fromisoformat(str(value)), format="medium", tzinfo=zone, locale=locale)


@lru_cache(maxsize=4096)  # Babel takes ~0.1 ms a call, and a page repeats the same few days
def long_date(day: date, locale: str) -> str:
    return format_date(day, "long", locale)


@lru_cache(maxsize=4096)  # likewise for the same few prices
def money(amount: int, currency: str, locale: str) -> str:
    """Minor units (what Stripe and billing count in) as the person's locale writes the amount."""
    code = currency.upper()
    return format_currency(Decimal(amount).scaleb(-get_currency_precision(code)), code, locale=locale)


def currency_digits(currency: str) -> int:
    """How many decimals the currency's minor unit has (2 for usd, 0 for jpy; 2 if unknown)."""
    try:
        return int(get_currency_precision(currency.upper()))
    except (KeyError, ValueError):
        return 2


def elapsed(seconds: float, locale: str) -> str:
    """A duration in words, rounded as people say it (`2 minutes`, `3 hours`)."""
    return format_timedelta(timedelta(seconds=seconds), threshold=1.5, locale=locale)
