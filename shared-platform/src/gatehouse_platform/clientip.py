"""Who the client is when proxies stand in front of a service: one rule for the gateway (whose
peers are a load balancer or the web front), auth-service (whose peer is the gateway) and the web
front (whose peer is the gateway), each with its own list of trusted proxies (`*_TRUSTED_PROXIES`).

X-Forwarded-For is believed only as far as it was written by configured proxies: walking it from
the right, each address appended by a trusted hop is skipped, and the first one that is not
trusted is the client. Anything further left was written by the client itself and may be forged.
A peer that is not trusted is the client, whatever it wrote. Services run uvicorn with
`proxy_headers=False` where they use this, so uvicorn does not rewrite the peer first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator
from starlette.requests import HTTPConnection

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
PEER_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class ClientAddress:
    ip: str
    peer_trusted: bool  # the direct peer is a configured proxy: its forwarding headers count


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "198.51.100.7:443"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _check_cidrs(cidrs: list[str]) -> list[str]:
    for cidr in cidrs:
        ipaddress.ip_network(cidr, strict=False)  # raises ValueError: the setting is refused at start
    return cidrs


# A setting's type: a JSON list of CIDRs whose X-Forwarded-For is believed (checked when loaded).
TrustedProxyCidrs = Annotated[list[str], AfterValidator(_check_cidrs)]


class TrustedProxies:
    def __init__(self, cidrs: Sequence[str]) -> None:
        self._networks: list[IPNetwork] = [ipaddress.ip_network(c, strict=False) for c in cidrs]
        self._peers: dict[str, bool] = {}  # the verdict per direct peer: a handful of addresses

    def _trusts_peer(self, peer: str) -> bool:
        trusted = self._peers.get(peer)
        if trusted is None:
            trusted = self.trusts(peer)
            if len(self._peers) >= PEER_CACHE_SIZE:
                self._peers.clear()
            self._peers[peer] = trusted
        return trusted

    def trusts(self, ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        if not self._networks or ip is None:
            return False
        address = _parse_ip(ip) if isinstance(ip, str) else ip
        return address is not None and any(address in network for network in self._networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> ClientAddress:
        peer = peer or "unknown"
        if not self._trusts_peer(peer):
            return ClientAddress(peer, False)
        if not forwarded_for:
            return ClientAddress(peer, True)
        client = peer
        for entry in reversed(forwarded_for.split(",")):
            address = _parse_ip(entry)
            if address is None:
                break  # garbage from here leftwards: keep the last hop we could vouch for
            client = str(address)
            if not self.trusts(address):
                break
        return ClientAddress(client, True)

    def client_of(self, connection: HTTPConnection) -> ClientAddress:
        """The client of a Starlette/FastAPI request (every X-Forwarded-For line, joined)."""
        peer = connection.client.host if connection.client is not None else None
        lines = connection.headers.getlist("x-forwarded-for")
        return self.client(peer, ", ".join(lines) if lines else None)
