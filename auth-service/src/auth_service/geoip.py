"""Where an address is, roughly: a city and a country from a MaxMind-format database (GeoLite2 or
GeoIP2 City or Country, or a compatible one such as DB-IP's lite files), when `AUTH_GEOIP_DATABASE`
names one. The audit trail and the new sign-in email show it beside the address. The only importer
of maxminddb.

Reading is a memory-mapped lookup of a few microseconds, done in the request. No database, no place:
nothing is looked up elsewhere, so no address leaves the service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import maxminddb


class Places:
    def __init__(self, database: Path | None) -> None:
        # A file that is not a database fails here, at start-up, not at the first sign-in.
        self._reader = maxminddb.open_database(database, maxminddb.MODE_MMAP) if database else None

    def of(self, ip: str | None) -> str | None:
        """ "City, Country" (English names), the country alone, or None when unknown."""
        if self._reader is None or not ip:
            return None
        try:
            record = self._reader.get(ip)
        except ValueError:  # not an address
            return None
        if not isinstance(record, dict):
            return None
        parts = [_name(record.get("city")), _name(record.get("country"))]
        return ", ".join(part for part in parts if part) or None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def _name(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    names = entry.get("names")
    name = names.get("en") if isinstance(names, dict) else None
    return name[:100] if isinstance(name, str) and name else None
