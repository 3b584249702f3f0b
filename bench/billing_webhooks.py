"""Stripe webhooks into billing-service: signed events per second applied exactly once, and the
latency of the webhook endpoint while they pour in.

Starts the Stripe emulator and billing-service (real settings but for the addresses; its outbox
relay publishing to a throw-away RabbitMQ vhost) on a throw-away database, subscribes a few users
through Checkout so their subscriptions are real, then has wrk post `invoice.paid` events shaped
exactly like the emulator's (a real one as the template; a new event id and invoice id each, signed
with the endpoint's secret), every fifth request repeating an earlier event. It measures until every
stored event is applied and checks that each distinct invoice made exactly one payment row and one
`payment.succeeded` event, whatever the duplicates.

Refund events ride along: before the burst, each subscription's first charge is refunded three times
in Stripe's dashboard (the emulator's control endpoint; the webhooks apply them), and one request in
five of the burst is a copy of one of those `refund.created` / `charge.refunded` events under a new
event id, as Stripe sends several events about one change. Each must change nothing: still one
refund row and one `payment.refunded` per refund, and each payment's refunded amount the sum of its
refunds.

CPU per event applied is the CPU time of billing-service's processes (uvicorn's parent and its
workers) and of the PostgreSQL backends serving its database, from wrk's start until every event of
the burst is applied, over the distinct events stored; the Stripe emulator, wrk and RabbitMQ are
left out. It is recorded for `make bench`'s final cost table (`support.record_costs`, "webhook
applied"). The services run each in a process group of their own, which ends with the bench
however it ends (bench/processes.py).

What the profile said (issue 20; py-spy on both workers for 10 s of a burst, event-loop thread):
about a third of the samples were the endpoint, of which most was FastAPI solving dependencies in
its thread pool (billing's dependencies were plain `def`: a thread hop each, per request; now
`async def`), then matching the route (the webhooks router was eighth; now first), and in the
group-commit recorder a session checkout with the pool's pre-ping per group and a multi-row INSERT
compiled and prepared anew for each group size (now one session through a burst and one
`INSERT … SELECT FROM unnest(arrays)`). Under half was the processor: re-reading each named
subscription from Stripe (a fifth, half of it the SDK building objects), `charge.refunded` (listing
the charge's refunds from Stripe per event, now once per batch, and 1 + 2 queries per refund, now
2), the invoice handler and the outbox's `add_event` (a `pg_notify` per event); the backlog gauge
had a transaction of its own (now read inside the batch's), and batches were small because the
processor claimed at once when woken (now it lingers `BILLING_WEBHOOK_BATCH_LINGER_SECONDS`).
Left: the outbox's `pg_notify` per event (shared-platform/outbox.py), the subscription re-read per
batch and the lock waits between the two workers' batches, the Stripe SDK's object building.

    uv run python bench/billing_webhooks.py [--seconds 10] [--connections 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import stripe

from gatehouse_platform import testing
from gatehouse_platform.testing import serve_in_thread
from processes import ServiceGroups
from support import ROOT, children, cpu_seconds, free_port, print_table, record_costs, run_wrk, wait_ready

SUBSCRIPTIONS = 8
DUPLICATE_EVERY = 5
REFUNDS_PER_CHARGE, REFUND_AMOUNT = 3, 100
REFUND_COPY_EVERY = 5  # one request in five is a refund event under a new id
LUA = """
local requests = {}
local i = 0
local duplicates = 0
init = function(args)
  for line in io.lines("%(path)s") do
    local signature, body = line:match("^([^\\t]*)\\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "/billing/stripe/webhook",
      {["Content-Type"] = "application/json", ["Stripe-Signature"] = signature}, body)
  end
end
request = function()
  i = i + 1
  return requests[((i - 1) %% #requests) + 1]
end
response = function(status, headers, body)
  if status ~= 200 then error("webhook answered " .. status .. ": " .. body) end
  if body:find('"duplicate":true', 1, true) then duplicates = duplicates + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("DUPLICATES %%d\\n", duplicates))
end
"""


def env_for(database_url: str, amqp_url: str, jwks_url: str, stripe_url: str, secret: str) -> dict[str, str]:
    return {
        **os.environ,
        "BILLING_DATABASE_URL": database_url,
        "BILLING_AMQP_URL": amqp_url,
        "BILLING_JWKS_URL": jwks_url,
        "BILLING_STRIPE_API_BASE": stripe_url,
        "BILLING_STRIPE_API_KEY": "sk_test_gatehouse_bench",
        "BILLING_STRIPE_WEBHOOK_SECRET": secret,
        "BILLING_STRIPE_MAX_NETWORK_RETRIES": "0",
        "BILLING_LOG_LEVEL": "WARNING",
        "BILLING_REDIS_KEY_PREFIX": f"gh-bench-billing-{secrets.token_hex(4)}",
    }


async def subscribe_users(
    base: str, stripe_url: str, issuer: testing.TestIssuer, pg: asyncpg.Connection
) -> list[str]:
    """Real subscriptions, paid through Checkout at the emulator; returns their Stripe ids."""
    admin = issuer.bearer(uuid.uuid4(), roles=["admin"])
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as api,
        httpx.AsyncClient(base_url=stripe_url) as control,
    ):
        plan = await api.post(
            "/billing/plans",
            json={"code": f"bench-{uuid.uuid4().hex[:8]}", "name": "Bench", "tier": "pro", "amount": 1500},
            headers=admin,
        )
        plan.raise_for_status()
        for n in range(SUBSCRIPTIONS):
            user = uuid.uuid4()
            checkout = await api.post(
                "/billing/subscriptions/subscribe",
                json={"plan_code": plan.json()["code"]},
                headers=issuer.bearer(user, email=f"bench-{n}@example.com"),
            )
            checkout.raise_for_status()
            completed = await control.post(
                f"/_emulator/checkout/sessions/{checkout.json()['session_id']}/complete",
                json={"outcome": "paid"},
            )
            completed.raise_for_status()

    async def all_active() -> list[str]:
        active = await pg.fetch("SELECT stripe_subscription_id FROM subscriptions WHERE status = 'active'")
        return [row["stripe_subscription_id"] for row in active] if len(active) == SUBSCRIPTIONS else []

    return await testing.eventually(all_active, "the subscriptions to activate", within=30, every=0.1)


def invoice_events(
    template: dict[str, Any],
    subscriptions: list[str],
    metadata: dict[str, dict[str, str]],
    count: int,
    run: str,
) -> list[dict[str, Any]]:
    """`count` invoice.paid events like `template`, each for a new invoice of one of the subscriptions."""
    events = []
    now = int(time.time())
    for n in range(count):
        event = copy.deepcopy(template)
        invoice = event["data"]["object"]
        subscription = subscriptions[n % len(subscriptions)]
        event["id"] = f"evt_bench_{run}_{n}"
        event["created"] = now
        invoice["id"] = f"in_bench_{run}_{n}"
        invoice["number"] = f"BENCH-{n:06d}"
        details = invoice["parent"]["subscription_details"]
        details["subscription"] = subscription
        details["metadata"] = metadata[subscription]
        for line in invoice["lines"]["data"]:
            line["invoice"] = invoice["id"]
        events.append(event)
    return events


@dataclass(frozen=True)
class DashboardRefunds:
    refund_ids: list[str]
    charge_ids: list[str]
    events: list[dict[str, Any]]  # Stripe's refund.created and charge.refunded about them


async def refund_in_dashboard(
    sdk: stripe.StripeClient, stripe_url: str, pg: asyncpg.Connection, subscriptions: list[str]
) -> DashboardRefunds:
    """Refunds made at Stripe, applied through the webhooks before the burst; their events."""
    charges = []
    async with httpx.AsyncClient(base_url=stripe_url) as control:
        for subscription in subscriptions:
            [invoice] = sdk.v1.invoices.list(params={"subscription": subscription, "limit": 1}).data
            [payment] = sdk.v1.invoice_payments.list(params={"invoice": str(invoice.id)}).data
            intent = sdk.v1.payment_intents.retrieve(str(payment.payment.payment_intent))
            charges.append(str(intent.latest_charge))
            for _ in range(REFUNDS_PER_CHARGE):
                made = await control.post(
                    f"/_emulator/charges/{intent.latest_charge}/refund", json={"amount": REFUND_AMOUNT}
                )
                made.raise_for_status()
    refunds = [
        r.id for charge in charges for r in sdk.v1.refunds.list(params={"charge": charge, "limit": 100}).data
    ]
    expected = len(subscriptions) * REFUNDS_PER_CHARGE

    async def applied() -> bool:
        return (
            await pg.fetchval("SELECT count(*) FROM refunds WHERE stripe_refund_id = ANY($1)", refunds)
            == expected
        )

    await testing.eventually(applied, "the dashboard refunds applied", within=60, every=0.2)
    events = [
        e.to_dict(for_json=True)
        for kind in ("refund.created", "charge.refunded")
        for e in sdk.v1.events.list(params={"type": kind, "limit": 100}).data
    ]
    return DashboardRefunds(refunds, charges, events)


def mixed(invoices: list[dict[str, Any]], copies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The invoice events with a refund copy after every `REFUND_COPY_EVERY - 1` of them."""
    out, spare = [], iter(copies)
    for n, event in enumerate(invoices, 1):
        out.append(event)
        if n % (REFUND_COPY_EVERY - 1) == 0 and (extra := next(spare, None)) is not None:
            out.append(extra)
    return out + list(spare)


def refund_copies(refunds: DashboardRefunds, count: int, run: str) -> list[dict[str, Any]]:
    """`count` copies of the refunds' events, each under a new event id."""
    copies = []
    for n in range(count):
        event = copy.deepcopy(refunds.events[n % len(refunds.events)])
        event["id"] = f"evt_benchr_{run}_{n}"
        copies.append(event)
    return copies


@dataclass(frozen=True)
class RefundCheck:
    copies: int
    unsettled: int  # copies not processed or ignored (failed, or still pending)
    rows: int
    announced: int
    amounts_right: bool

    def exact(self, refunds: DashboardRefunds) -> bool:
        expected = len(refunds.refund_ids)
        return self.unsettled == 0 and self.rows == self.announced == expected and self.amounts_right


async def check_refunds(pg: asyncpg.Connection, refunds: DashboardRefunds, run: str) -> RefundCheck:
    pattern = f"evt_benchr_{run}_%"
    return RefundCheck(
        copies=await pg.fetchval("SELECT count(*) FROM stripe_events WHERE id LIKE $1", pattern),
        unsettled=await pg.fetchval(
            "SELECT count(*) FROM stripe_events WHERE id LIKE $1 AND status NOT IN ('processed', 'ignored')",
            pattern,
        ),
        rows=await pg.fetchval(
            "SELECT count(*) FROM refunds WHERE stripe_refund_id = ANY($1)", refunds.refund_ids
        ),
        announced=await pg.fetchval(
            "SELECT count(*) FROM outbox WHERE event_type = 'payment.refunded'"
            " AND payload->'data'->>'refund_id' = ANY($1)",
            refunds.refund_ids,
        ),
        amounts_right=await pg.fetchval(
            "SELECT bool_and(amount_refunded = $2) FROM payments WHERE stripe_charge_id = ANY($1)",
            refunds.charge_ids,
            REFUNDS_PER_CHARGE * REFUND_AMOUNT,
        ),
    )


@dataclass
class Run:
    event_bytes: int
    posted: int
    posted_for: float
    duplicates: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    stored: int
    invoice_events: int
    applied_for: float
    payments: int
    announced: int
    per_invoice: int
    ignored: int
    cpu_seconds: float  # billing-service's processes and its database backends, post to applied

    @property
    def cpu_ms_per_applied(self) -> float:
        return self.cpu_seconds / self.stored * 1000 if self.stored else float("nan")

    @property
    def exact(self) -> bool:
        return (
            self.payments == self.invoice_events == self.announced
            and self.per_invoice == 1
            and self.ignored == 0
        )


def tree(pid: int) -> list[int]:
    return [pid, *(p for child in children(pid) for p in tree(child))]


async def cpu_by_pid(pg: asyncpg.Connection, billing: int, database: str) -> dict[int, float]:
    """CPU seconds so far of billing-service's processes (uvicorn's parent and workers) and of the
    PostgreSQL backends serving its database (not this bench's own connection)."""
    backends = await pg.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database
    )
    return {pid: cpu_seconds([pid]) for pid in [*tree(billing), *(r["pid"] for r in backends)]}


async def post_and_apply(
    base: str,
    pg: asyncpg.Connection,
    billing: int,
    database: str,
    secret: str,
    distinct: list[dict[str, Any]],
    *,
    run: str,
    seconds: float,
    connections: int,
) -> Run:
    """wrk posts the events (every fifth request a duplicate); then wait until all are applied."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv") as requests_file:
        for n, event in enumerate(distinct):
            for repeat in [event] if n % (DUPLICATE_EVERY - 1) else [event, distinct[n // 2]]:
                body = json.dumps(repeat, separators=(",", ":"))
                signature = stripe.WebhookSignature.generate_signature_header(body, secret)
                requests_file.write(f"{signature}\t{body}\n")
        requests_file.flush()
        cpu_before = await cpu_by_pid(pg, billing, database)
        started = time.perf_counter()
        result = await run_wrk(
            f"{base}/billing/stripe/webhook",
            seconds=seconds,
            connections=connections,
            script=LUA % {"path": requests_file.name},
        )
    posted_for = time.perf_counter() - started
    await asyncio.sleep(0.5)  # requests still in flight at wrk's deadline land
    pattern = f"evt_bench_{run}_%"
    pending = (
        "SELECT count(*) FROM stripe_events"
        " WHERE (id LIKE $1 OR id LIKE $2) AND status IN ('pending', 'failed')"
    )
    for _ in range(6000):  # polled: the database is the only witness of "applied"
        if not await pg.fetchval(pending, pattern, f"evt_benchr_{run}_%"):
            break
        await asyncio.sleep(0.05)
    applied_for = time.perf_counter() - started
    cpu_after = await cpu_by_pid(pg, billing, database)  # a backend that ended meanwhile is missed
    cpu_used = sum(after - cpu_before.get(pid, 0.0) for pid, after in cpu_after.items())
    invoices = f"in_bench_{run}_%"
    stored = await pg.fetchval(
        "SELECT count(*) FROM stripe_events WHERE id LIKE $1 OR id LIKE $2", pattern, f"evt_benchr_{run}_%"
    )
    stored_invoices = await pg.fetchval("SELECT count(*) FROM stripe_events WHERE id LIKE $1", pattern)
    return Run(
        event_bytes=len(json.dumps(distinct[0])),
        posted=result.requests,
        posted_for=posted_for,
        duplicates=result.requests - stored,
        requests_per_second=result.requests_per_second,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        errors=result.errors,
        stored=stored,
        invoice_events=stored_invoices,
        applied_for=applied_for,
        payments=await pg.fetchval("SELECT count(*) FROM payments WHERE stripe_invoice_id LIKE $1", invoices),
        announced=await pg.fetchval(
            "SELECT count(*) FROM outbox WHERE event_type = 'payment.succeeded'"
            " AND payload->'data'->>'invoice_id' LIKE $1",
            invoices,
        ),
        per_invoice=await pg.fetchval(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM payments"
            " WHERE stripe_invoice_id LIKE $1 GROUP BY stripe_invoice_id) c",
            invoices,
        ),
        ignored=await pg.fetchval(
            "SELECT count(*) FROM stripe_events WHERE id LIKE $1 AND status <> 'processed'", pattern
        ),
        cpu_seconds=cpu_used,
    )


async def main(seconds: float, connections: int, workers: int) -> None:
    name = testing.unique_name("gh_bench_billing")
    database_url = await testing.create_database(name)
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    issuer = testing.TestIssuer()
    secret = f"whsec_bench_{secrets.token_hex(12)}"
    run = secrets.token_hex(3)
    # billing-service's output, kept (and named) if the run fails
    log = tempfile.NamedTemporaryFile("wb", prefix="bench-billing-", suffix=".log", delete=False)  # noqa: SIM115
    failed = True
    try:
        await testing.migrate(ROOT / "billing-service", database_url)
        with (
            testing.rabbitmq_vhost(name) as amqp_url,
            serve_in_thread(issuer.jwks_app()) as jwks_base,
            ServiceGroups() as services,  # left first: the services stop before the vhost goes
        ):
            billing_port, stripe_port = free_port(), free_port()
            base, stripe_url = f"http://127.0.0.1:{billing_port}", f"http://127.0.0.1:{stripe_port}"
            services.start(
                [
                    sys.executable,
                    "-m",
                    "gatehouse_emulators.stripe",
                    "--port",
                    str(stripe_port),
                    "--webhook-url",
                    f"{base}/billing/stripe/webhook",
                    "--webhook-secret",
                    secret,
                    "--log-level",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            env = env_for(database_url, amqp_url, jwks_base + testing.JWKS_PATH, stripe_url, secret)
            billing = services.start(
                [
                    sys.executable,
                    "-m",
                    "billing_service.cli",
                    "serve",
                    "--port",
                    str(billing_port),
                    "--workers",
                    str(workers),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            await wait_ready(stripe_url, "/healthz")
            await wait_ready(base)
            pg = await asyncpg.connect(dsn)
            try:
                subscriptions = await subscribe_users(base, stripe_url, issuer, pg)
                sdk = stripe.StripeClient("sk_test_gatehouse_bench", base_addresses={"api": stripe_url})
                template = next(
                    e.to_dict(for_json=True)
                    for e in sdk.v1.events.list(params={"type": "invoice.paid", "limit": 1}).data
                )
                metadata = {
                    s: {k: str(v) for k, v in sdk.v1.subscriptions.retrieve(s).metadata.to_dict().items()}
                    for s in subscriptions
                }
                refunds = await refund_in_dashboard(sdk, stripe_url, pg, subscriptions)
                burst = await post_and_apply(
                    base,
                    pg,
                    billing.pid,
                    name,
                    secret,
                    mixed(
                        invoice_events(template, subscriptions, metadata, int(seconds * 1200), run),
                        refund_copies(refunds, int(seconds * 300), run),
                    ),
                    run=run,
                    seconds=seconds,
                    connections=connections,
                )
                refund_check = await check_refunds(pg, refunds, run)
                light = await post_and_apply(
                    base,
                    pg,
                    billing.pid,
                    name,
                    secret,
                    invoice_events(template, subscriptions, metadata, int(seconds * 300), run + "l"),
                    run=run + "l",
                    seconds=seconds / 2,
                    connections=2,
                )
            finally:
                await pg.close()
        print_table(
            [
                ("cores (shared with other engineers' work right now)", f"{os.cpu_count()}"),
                ("billing-service processes (uvicorn workers)", f"{workers}"),
                ("event size (invoice.paid, bytes)", f"{burst.event_bytes}"),
                (
                    f"burst: webhooks posted by wrk ({connections} connections)",
                    f"{burst.posted} in {burst.posted_for:.1f} s",
                ),
                ("burst: of which duplicates (answered 200, duplicate: true)", f"{burst.duplicates}"),
                ("burst: webhook requests/s", f"{burst.requests_per_second:.0f}"),
                ("burst: webhook latency p50 / p99", f"{burst.p50_ms:.1f} / {burst.p99_ms:.1f} ms"),
                (
                    "burst: distinct events stored, all applied after",
                    f"{burst.stored} in {burst.applied_for:.1f} s",
                ),
                (
                    "events applied exactly once per second (target >= 500)",
                    f"{burst.stored / burst.applied_for:.0f}",
                ),
                (
                    "burst: CPU ms per event applied (billing-service + its PostgreSQL backends)",
                    f"{burst.cpu_ms_per_applied:.1f}",
                ),
                (
                    "burst: payment rows / payment.succeeded / max rows per invoice",
                    f"{burst.payments} / {burst.announced} / {burst.per_invoice}",
                ),
                ("light load (2 connections): webhook requests/s", f"{light.requests_per_second:.0f}"),
                ("light load: webhook latency p50 / p99", f"{light.p50_ms:.1f} / {light.p99_ms:.1f} ms"),
                (
                    "exactly once in both runs (rows == events == announcements)",
                    "yes" if burst.exact and light.exact else "NO",
                ),
                (
                    "burst: refund events under new ids (dashboard refunds: rows / payment.refunded)",
                    f"{refund_check.copies} ({len(refunds.refund_ids)}: "
                    f"{refund_check.rows} / {refund_check.announced})",
                ),
                (
                    "refunds exactly once (no new row, announcement or amount; none failed)",
                    "yes" if refund_check.exact(refunds) else "NO",
                ),
                ("wrk errors", f"{burst.errors + light.errors}"),
            ]
        )
        record_costs(
            "billing_webhooks",
            {"webhook applied": burst.cpu_ms_per_applied},
            shlex.join(["python", *sys.argv]),
        )
        failed = False
    finally:
        log.close()
        if failed:
            print(f"billing-service's output: {log.name}", file=sys.stderr)
        else:
            os.unlink(log.name)
        await testing.drop_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.connections, args.workers))
