"""`make chaos`: the fault drills of issue 22, run against the whole system as `make run` starts it
(the same Procfile, on free ports, with a database, vhost and Redis prefixes of its own), and the
fault table printed with today's figures.

The machine's PostgreSQL, Redis, RabbitMQ and the SMTP catcher are shared, so nothing is stopped:
every service reaches them, and the gateway reaches billing-service, through TCP proxies this script
holds, and a fault is the proxy's — cut (connections reset, new ones refused: a restart or an
outage), or stalled (connections open, no byte passes: a hung server). Clients talk to the gateway
as apps do.

    uv run python bench/chaos.py [--keep var/chaos]

A drill passes when no answer is a 500 (or another 5xx than 503, 504) and no revoked token is
accepted; the script exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default as email_policy
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from redis.asyncio import Redis

from gatehouse_platform.tcp_proxy import TcpProxy
from support import ROOT, new_account, percentile, print_table

sys.path.insert(0, str(ROOT / "tests-e2e"))
from harness import PASSWORD, System, running_system  # the e2e tests' harness: one copy

T = TypeVar("T")
SERVICES = ("AUTH", "BILLING", "NOTIFICATION", "GATEWAY")
UNAVAILABLE = {503, 504}  # what a fault may answer; a 500 or 502 is a failure of ours
REDIS = "redis://127.0.0.1:6379/0"
THROUGH = {"DATABASE_URL": "PostgreSQL", "AMQP_URL": "RabbitMQ", "CELERY_BROKER_URL": "RabbitMQ"}


class Links:
    """The proxies, served by an event loop of their own in a thread: the system's processes keep
    talking through them while the drills run in the main loop."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-links", daemon=True)
        self._thread.start()
        self.proxies: dict[str, TcpProxy] = {}

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def add(self, name: str, host: str, port: int) -> TcpProxy:
        async def opened() -> TcpProxy:
            proxy = TcpProxy(host, port)  # made in the links' loop: its events belong there
            await proxy.open()
            return proxy

        proxy = self.proxies[name] = self._run(opened())
        return proxy

    def cut(self, name: str) -> None:
        self._run(self.proxies[name].close())

    def heal(self, name: str) -> None:
        self._run(self.proxies[name].open())

    def stall(self, name: str) -> None:
        self._loop.call_soon_threadsafe(self.proxies[name].stall)

    def resume(self, name: str) -> None:
        self._loop.call_soon_threadsafe(self.proxies[name].resume)

    def close(self) -> None:
        for proxy in self.proxies.values():
            self._loop.call_soon_threadsafe(proxy.resume)
            self._run(proxy.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def rewire_through(links: Links) -> Callable[[Mapping[str, str]], dict[str, str]]:
    """What puts every service's servers behind the links: the environment's addresses replaced."""

    def rewire(env: Mapping[str, str]) -> dict[str, str]:
        postgres = links.add("PostgreSQL", "127.0.0.1", 5432)
        broker = links.add("RabbitMQ", "127.0.0.1", 5672)
        redis = links.add("Redis", "127.0.0.1", 6379)
        smtp = links.add("SMTP", "127.0.0.1", int(env["SMTP_PORT"]))
        billing = urlsplit(env["GATEWAY_BILLING_URL"])
        upstream = links.add("billing-service", billing.hostname or "127.0.0.1", billing.port or 80)
        changed: dict[str, str] = {
            "NOTIFICATION_SMTP_PORT": str(smtp.port),
            "GATEWAY_BILLING_URL": f"http://127.0.0.1:{upstream.port}",
        }
        for service in SERVICES:
            changed[f"{service}_REDIS_URL"] = redis.url(env.get(f"{service}_REDIS_URL", REDIS))
            for key, proxy in (
                ("DATABASE_URL", postgres),
                ("AMQP_URL", broker),
                ("CELERY_BROKER_URL", broker),
            ):
                if f"{service}_{key}" in env:
                    changed[f"{service}_{key}"] = proxy.url(env[f"{service}_{key}"])
        return changed

    return rewire


@dataclass
class Answers:
    """What the clients got during a drill."""

    statuses: Counter[int] = field(default_factory=Counter)
    without_retry_after: int = 0  # 503s lacking Retry-After
    waits: list[float] = field(default_factory=list)
    last_refused: float = 0.0  # when the last 5xx or non-answer came (monotonic)

    def record(self, response: httpx.Response | None, seconds: float) -> None:
        status = 599 if response is None else response.status_code  # 599: no answer at all
        self.statuses[status] += 1
        self.waits.append(seconds)
        if status >= 500:
            self.last_refused = time.monotonic()
        if response is not None and status == 503 and "retry-after" not in response.headers:
            self.without_retry_after += 1

    @property
    def bad(self) -> int:
        """Answers no client should get: 5xx other than 503/504, or no answer."""
        return sum(n for status, n in self.statuses.items() if status >= 500 and status not in UNAVAILABLE)

    def summary(self) -> str:
        return ", ".join(f"{n} × {status}" for status, n in sorted(self.statuses.items()))


async def timed(http: httpx.AsyncClient, answers: Answers, method: str, url: str, **kwargs: Any) -> None:
    start = time.monotonic()
    try:
        response: httpx.Response | None = await http.request(method, url, **kwargs)
    except httpx.TransportError:
        response = None
    answers.record(response, time.monotonic() - start)


async def clients(count: int, seconds: float, step: Callable[[int], Awaitable[None]]) -> None:
    """`count` clients calling `step` back to back for `seconds`."""
    stop = time.monotonic() + seconds

    async def client(nth: int) -> None:
        while time.monotonic() < stop:
            await step(nth)

    await asyncio.gather(*(client(nth) for nth in range(count)))


async def sample_ready(http: httpx.AsyncClient, urls: list[str], seconds: float) -> Counter[int]:
    """/readyz of each service every 0.2 s for `seconds`: the statuses seen."""
    seen: Counter[int] = Counter()
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        for url in urls:
            try:
                seen[(await http.get(f"{url}/readyz", timeout=2)).status_code] += 1
            except httpx.TransportError:
                seen[599] += 1
        await asyncio.sleep(0.2)
    return seen


class Mailbox:
    """Who the catcher's Maildir has mail for: each file's To header read once."""

    def __init__(self, maildir: Path) -> None:
        self._new = maildir / "new"
        self._to: dict[str, str] = {}

    def counts(self) -> Counter[str]:
        for path in self._new.iterdir():
            if path.name not in self._to:
                headers = BytesHeaderParser(policy=email_policy).parsebytes(path.read_bytes())
                self._to[path.name] = str(headers["To"]).lower()
        return Counter(self._to.values())


async def mails_arrived(system: System, addresses: list[str], within: float) -> tuple[float, int, int]:
    """(when every address had mail (monotonic), addresses with none, addresses with more)."""
    mailbox, start = Mailbox(system.maildir), time.monotonic()
    while time.monotonic() - start < within:
        if all(mailbox.counts()[address] for address in addresses):
            break
        await asyncio.sleep(0.2)
    arrived = time.monotonic()
    await asyncio.sleep(2)  # a duplicate would come soon after
    counts = mailbox.counts()
    return arrived, sum(1 for a in addresses if counts[a] == 0), sum(1 for a in addresses if counts[a] > 1)


@dataclass
class Row:
    fault: str
    answers: str
    figures: str
    failures: int  # 500s, answers missing, revoked tokens accepted, emails lost or doubled


async def broker_outage(system: System, links: Links, http: httpx.AsyncClient) -> Row:
    """RabbitMQ gone 10 s during 300 sign-ups: sign-ups still succeed, every email once after."""
    answers, emails = Answers(), [f"chaos-mq-{uuid.uuid4().hex[:10]}@example.com" for _ in range(300)]
    queue = iter(emails)

    async def signing_up() -> None:
        for email in queue:  # one iterator: the 8 clients share the 300 sign-ups
            body = {"email": email, "username": f"m{uuid.uuid4().hex[:12]}", "password": PASSWORD}
            await timed(http, answers, "POST", "/auth/register", json=body)

    ready: Counter[int] = Counter()
    healed: list[float] = []

    async def outage() -> None:
        await asyncio.sleep(1)
        links.cut("RabbitMQ")
        services = [system.urls[name] for name in ("auth", "billing", "notification")]
        ready.update(await sample_ready(http, services, 10))
        links.heal("RabbitMQ")
        healed.append(time.monotonic())

    await asyncio.gather(outage(), *(signing_up() for _ in range(8)))
    arrived, lost, doubled = await mails_arrived(system, emails, within=120)
    not_ready = sum(n for status, n in ready.items() if status != 200)
    return Row(
        "RabbitMQ cut 10 s during 300 sign-ups",
        answers.summary(),
        f"/readyz not 200 meanwhile: {not_ready} of {sum(ready.values())}; every email in "
        f"{arrived - healed[0]:.1f} s after the broker returned; lost {lost}, doubled {doubled}",
        answers.bad + lost + doubled + not_ready,
    )


async def database_restart(system: System, links: Links, http: httpx.AsyncClient) -> Row:
    """PostgreSQL restarted (every connection reset, new ones refused 3 s) under 4 clients."""
    email, bearer = await new_account(http, PASSWORD)
    answers = Answers()
    calls = [
        ("POST", "/auth/login", {"json": {"email": email, "password": PASSWORD}}),
        ("GET", "/auth/me", {"headers": bearer}),
        ("GET", "/billing/plans", {}),
    ]

    async def call(nth: int) -> None:
        method, path, kwargs = calls[nth % len(calls)]
        await timed(http, answers, method, path, **kwargs)

    healed: list[float] = []

    async def restart() -> None:
        await asyncio.sleep(2)
        links.cut("PostgreSQL")
        await asyncio.sleep(3)
        links.heal("PostgreSQL")
        healed.append(time.monotonic())

    await asyncio.gather(restart(), clients(4, 9, call))
    return Row(
        "PostgreSQL restarted (3 s) under 4 clients of login, me, plans",
        answers.summary(),
        f"503 without Retry-After: {answers.without_retry_after}; the last 503 "
        f"{answers.last_refused - healed[0]:.1f} s after it was back, same processes",
        answers.bad + answers.without_retry_after,
    )


async def recovery(http: httpx.AsyncClient, calls: list[tuple[str, str, dict[str, Any]]]) -> float:
    """Seconds until every call answers 200 (60 at most)."""
    start = time.monotonic()
    while time.monotonic() - start < 60:
        answers = Answers()
        for method, path, options in calls:
            await timed(http, answers, method, path, **options)
        if set(answers.statuses) == {200}:
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - start


async def redis_loss(system: System, links: Links, http: httpx.AsyncClient) -> Row:
    """Redis gone ~10 s and back empty: logins answer 503 meanwhile; a token logged out before is
    refused after, by the gateway and by billing-service (asked directly)."""
    email, bearer = await new_account(http, PASSWORD)
    _, revoked = await new_account(http, PASSWORD)
    (await http.post("/auth/logout", headers=revoked)).raise_for_status()
    answers = Answers()
    calls = [
        ("POST", "/auth/login", {"json": {"email": email, "password": PASSWORD}}),
        ("GET", "/billing/entitlements/me", {"headers": bearer}),
        ("GET", "/billing/plans", {}),
    ]
    healed: list[float] = []

    async def call(nth: int) -> None:
        method, path, kwargs = calls[nth % len(calls)]
        await timed(http, answers, method, path, **kwargs)

    async def outage() -> None:
        await asyncio.sleep(1)
        links.cut("Redis")
        await forget_everything(system)  # it comes back empty, as after a restart without AOF
        await asyncio.sleep(10)
        links.heal("Redis")
        healed.append(time.monotonic())

    await asyncio.gather(outage(), clients(3, 13, call))
    accepted = 0
    for base in (system.gateway, system.urls["billing"]):
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for _ in range(20):  # for a while after: a rebuilt denylist must hold
                status = (await client.get("/billing/entitlements/me", headers=revoked)).status_code
                accepted += status == 200
                await asyncio.sleep(0.1)
    return Row(
        "Redis cut 10 s, back empty",
        answers.summary(),
        f"a logged-out token accepted after: {accepted} of 40 tries (gateway, billing); the last 503 "
        f"{answers.last_refused - healed[0]:.1f} s after it was back",
        answers.bad + accepted,
    )


async def forget_everything(system: System) -> None:
    """Delete this run's Redis keys (the machine's Redis is shared: only ours)."""
    redis = Redis.from_url(REDIS)
    try:
        for service in SERVICES:
            if prefix := system.env.get(f"{service}_REDIS_KEY_PREFIX"):
                async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
                    await redis.delete(key)
    finally:
        await redis.aclose()


async def smtp_hung(system: System, links: Links, http: httpx.AsyncClient) -> Row:
    """The SMTP server hung 10 s while 20 emails are due: the API stays ready, each email once."""
    emails = [f"chaos-smtp-{uuid.uuid4().hex[:10]}@example.com" for _ in range(20)]
    answers = Answers()
    links.stall("SMTP")
    for email in emails:
        body = {"email": email, "username": f"s{uuid.uuid4().hex[:12]}", "password": PASSWORD}
        await timed(http, answers, "POST", "/auth/register", json=body)
    ready = await sample_ready(http, [system.urls["notification"]], 10)
    links.resume("SMTP")
    resumed = time.monotonic()
    arrived, lost, doubled = await mails_arrived(system, emails, within=120)
    not_ready = sum(n for status, n in ready.items() if status != 200)
    return Row(
        "SMTP hung 10 s with 20 emails due",
        answers.summary(),
        f"notification /readyz not 200: {not_ready} of {sum(ready.values())}; every email "
        f"{arrived - resumed:.1f} s after it resumed; lost {lost}, doubled {doubled}",
        answers.bad + not_ready + lost + doubled,
    )


async def upstream_hung(system: System, links: Links, http: httpx.AsyncClient) -> Row:
    """billing-service hung 20 s under 4 clients: the gateway sheds it in seconds."""
    answers = Answers()
    first_shed: list[float] = []
    start = time.monotonic()

    async def call(_nth: int) -> None:
        await timed(http, answers, "GET", "/billing/plans")
        if answers.statuses[503] and not first_shed:
            first_shed.append(time.monotonic() - start)

    links.stall("billing-service")
    await clients(4, 20, call)
    links.resume("billing-service")
    recovered = await recovery(http, [("GET", "/billing/plans", {})])
    shed = f"{first_shed[0]:.1f} s" if first_shed else "never"
    return Row(
        "billing-service hung 20 s under 4 clients",
        answers.summary(),
        f"first 503 at {shed}; longest wait {max(answers.waits):.1f} s, p50 "
        f"{percentile(answers.waits, 50):.2f} s; 200 again {recovered:.1f} s after",
        answers.bad,
    )


FAILURES = "failures (a 5xx but 503/504, no answer, a lost or doubled email, a revoked token accepted)"
DRILLS = (broker_outage, database_restart, redis_loss, smtp_hung, upstream_hung)


@contextmanager
def chaos_system(var: Path) -> Iterator[tuple[System, Links]]:
    links = Links()
    try:
        with running_system(var, "gh_chaos", rewire=rewire_through(links)) as system:
            yield system, links
    finally:
        links.close()


async def drill(system: System, links: Links) -> list[Row]:
    rows = []
    async with httpx.AsyncClient(base_url=system.gateway, timeout=60) as http:
        for run in DRILLS:
            print(f"drill: {run.__doc__.splitlines()[0] if run.__doc__ else run.__name__}", flush=True)
            rows.append(await run(system, links, http))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="keep the system's logs and mail here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gatehouse-chaos-") as scratch:
        var = args.keep or Path(scratch)
        var.mkdir(parents=True, exist_ok=True)
        print("starting the system (make run's Procfile) behind the fault proxies…", flush=True)
        with chaos_system(var) as (system, links):
            rows = asyncio.run(drill(system, links))
    print_table(
        [(row.fault, row.answers, row.figures, str(row.failures)) for row in rows],
        header=("fault", "answers", "what held", FAILURES),
    )
    return 1 if any(row.failures for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
