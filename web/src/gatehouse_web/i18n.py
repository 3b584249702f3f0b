"""Translations (gettext catalogues through Babel) and the choice of a person's language.

The catalogues are the `.po` files under `locale/`, compiled in memory when the app starts, so a
fresh clone needs no build step and no compiled `.mo` file is committed. The language is the
profile's `locale` when the person is signed in and has one we speak, else the best match of
Accept-Language, else WEB_DEFAULT_LOCALE."""

from __future__ import annotations

import gettext
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

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
