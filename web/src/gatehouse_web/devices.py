"""A session's User-Agent as a person names their device ("Chrome on Linux"), by ua-parser (the
maintained port of uap-core's rules, with its native matcher, `ua-parser[regex]`), never by
regexes of our own. Its rules are compiled on the first parse (about half a second): `warm_up`
does that while the app starts, so no person waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import lru_cache

from ua_parser import parse

UNKNOWN = "Other"  # what uap-core calls a family it does not recognise


@lru_cache(maxsize=1024)
def _families(user_agent: str) -> tuple[str | None, str | None]:
    found = parse(user_agent)
    browser = found.user_agent.family if found.user_agent else None
    system = found.os.family if found.os else None
    return (
        browser if browser and browser != UNKNOWN else None,
        system if system and system != UNKNOWN else None,
    )


def device_name(user_agent: str | None, gettext: Callable[..., str]) -> str | None:
    """ "Firefox on Windows", "Mobile Safari on iOS", "Chrome", or None when nothing is recognised."""
    if not user_agent:
        return None
    browser, system = _families(user_agent[:512])
    if browser and system:
        return gettext("%(browser)s on %(system)s", browser=browser, system=system)
    return browser or system


async def warm_up() -> None:
    await asyncio.to_thread(parse, "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
