"""A session's User-Agent as a person names their device ("Chrome on Linux"), by ua-parser (the
maintained port of uap-core's rules), never by regexes of our own.

Its pure-Python matchers, made lazily: the rules are loaded at the first name asked for, each
regex compiled the first time the search reaches it, and only the browser and OS rules are ever
searched (never the device ones, the largest set, which a name does not use). The native matcher
(`ua-parser[regex]`) compiled every rule at start instead: about half a second of the web app's
start and tens of MB of its memory, for a page few requests ask for. A User-Agent once named is
remembered (`_families`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache

from ua_parser import Domain, Parser
from ua_parser.basic import Resolver
from ua_parser.loaders import load_lazy_builtins

UNKNOWN = "Other"  # what uap-core calls a family it does not recognise


@cache
def _parser() -> Parser:
    return Parser(Resolver(load_lazy_builtins()))


@lru_cache(maxsize=1024)
def _families(user_agent: str) -> tuple[str | None, str | None]:
    found = _parser()(user_agent, Domain.USER_AGENT | Domain.OS)
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
