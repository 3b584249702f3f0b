"""Gatehouse's Grafana dashboards, written as data: `python deploy/observability/grafana/build.py`
rewrites dashboards/*.json (deploy/tests check the committed files are what this prints, and that
every metric a panel queries is one our code defines).

Each dashboard is a list of rows; each row a list of panels of equal width. A panel is a title, a
unit and its PromQL queries (`legend: expr`). The `$datasource` variable picks the Prometheus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
WIDTH, HEIGHT = 24, 8


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: dict[str, str]
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: list[list[Panel]] = field(default_factory=list)


def rate(metric: str, where: str = "", by: str = "", window: str = "5m", of: str = "rate") -> str:
    """`sum by (<by>) (rate(<metric>{<where>}[<window>]))`; `of="increase"` for counts per window."""
    grouping = f" by ({by})" if by else ""
    selector = f"{metric}{{{where}}}" if where else metric
    return f"sum{grouping} ({of}({selector}[{window}]))"


def quantile(q: float, histogram: str, where: str = "") -> str:
    return f"histogram_quantile({q}, {rate(f'{histogram}_bucket', where, by='le')})"


def red(job: str) -> list[Panel]:
    """Rate, errors and duration of one service's requests, per route."""
    where = f'job="{job}"'
    return [
        Panel(
            "Requests per second by route",
            "reqps",
            {"{{route}}": rate("http_requests_total", where, "route")},
        ),
        Panel(
            "5xx ratio",
            "percentunit",
            {"5xx": f"job:http_requests_5xx:ratio_rate5m{{{where}}}"},
            "Alert GatehouseHighErrorRate above 1 % for 5 min.",
        ),
        Panel(
            "Latency p50 / p99",
            "s",
            {
                "p50": quantile(0.5, "http_request_duration_seconds", where),
                "p99": f"job:http_request_duration_seconds:p99_5m{{{where}}}",
            },
        ),
    ]


def outbox(job: str) -> list[Panel]:
    where = f'job="{job}"'
    return [
        Panel(
            "Events published by type",
            "ops",
            {"{{event_type}}": rate("gatehouse_outbox_published_total", where, "event_type")},
        ),
        Panel(
            "Outbox lag (oldest unpublished event)",
            "s",
            {"lag": f"max(gatehouse_outbox_lag_seconds{{{where}}})"},
            "Alert GatehouseOutboxLagging above 60 s.",
        ),
        Panel(
            "Relay leaders, waiting events, publish failures",
            "short",
            {
                "leaders": f"sum(gatehouse_outbox_relay_leader{{{where}}})",
                "waiting": f"max(gatehouse_outbox_backlog{{{where}}})",
                "failures/s": rate("gatehouse_outbox_publish_failures_total", where),
            },
        ),
    ]


def consumer(job: str) -> list[Panel]:
    where = f'job="{job}"'
    return [
        Panel(
            "Events handled by type",
            "ops",
            {"{{event_type}}": rate("gatehouse_events_handled_total", where, "event_type")},
        ),
        Panel(
            "Failures, retries, duplicates",
            "ops",
            {
                "failed": rate("gatehouse_events_failed_total", where),
                "retried": rate("gatehouse_events_retried_total", where),
                "duplicates": rate("gatehouse_events_duplicates_total", where),
                "redelivered": rate("gatehouse_events_redelivered_total", where),
            },
        ),
        Panel(
            "Waiting in the queue (lag) and in the dead-letter queue",
            "short",
            {
                "waiting": f'max(gatehouse_consumer_queue_messages{{{where},queue="main"}})',
                "dead letters": f'max(gatehouse_consumer_queue_messages{{{where},queue="dlq"}})',
            },
            "Alerts GatehouseConsumerLagging (> 500 for 10 min) and GatehouseDeadLettersWaiting (an hour).",
        ),
        Panel(
            "Dead-lettered (last hour)",
            "short",
            {"{{reason}}": rate("gatehouse_events_dead_lettered_total", where, "reason", "1h", "increase")},
            "Alert GatehouseEventsDeadLettered on any; replay per deploy/README.md.",
        ),
    ]


def dependencies(job: str) -> Panel:
    return Panel(
        "Dependencies up",
        "short",
        {"{{dependency}}": f'min by (dependency) (dependency_up{{job="{job}"}})'},
        "1 while the dependency answers /readyz's check; alert GatehouseDependencyDown at 0 for 2 min.",
    )


def tokens(job: str) -> Panel:
    return Panel(
        "Tokens refused by reason",
        "ops",
        {"{{reason}}": rate("gatehouse_token_verification_failures_total", f'job="{job}"', "reason")},
    )


EMAILS = "notification_emails_sent_total"
SMTP = "notification_smtp_send_seconds"
DASHBOARDS = [
    Dashboard(
        "gatehouse-overview",
        "Gatehouse — overview",
        "What clients see at the gateway, each upstream's health, and every service's error ratio.",
        [
            [
                Panel(
                    "Requests per second by upstream",
                    "reqps",
                    {"{{upstream}}": "upstream:gateway_requests:rate5m"},
                ),
                Panel(
                    "5xx ratio by upstream",
                    "percentunit",
                    {"{{upstream}}": "upstream:gateway_requests_5xx:ratio_rate5m"},
                    "Alert GatewayUpstreamErrors above 1 % for 5 min.",
                ),
                Panel(
                    "Latency p99 by upstream",
                    "s",
                    {"{{upstream}}": "upstream:gateway_request_duration_seconds:p99_5m"},
                ),
            ],
            [
                Panel(
                    "Circuit breakers (0 closed, 1 half-open, 2 open)",
                    "short",
                    {"{{upstream}}": "max by (upstream) (gateway_breaker_state)"},
                ),
                Panel(
                    "Upstream failures by kind",
                    "ops",
                    {
                        "{{upstream}} {{kind}}": rate("gateway_upstream_failures_total", by="upstream, kind"),
                        "{{upstream}} retries": rate("gateway_upstream_retries_total", by="upstream"),
                    },
                ),
                Panel(
                    "Refused at the edge",
                    "ops",
                    {
                        "429 {{rule}}": rate("gateway_rate_limited_total", by="rule"),
                        "token {{reason}}": rate("gateway_edge_rejections_total", by="reason"),
                    },
                ),
            ],
            [
                Panel(
                    "5xx ratio by service", "percentunit", {"{{job}}": "job:http_requests_5xx:ratio_rate5m"}
                ),
                Panel("Latency p99 by service", "s", {"{{job}}": "job:http_request_duration_seconds:p99_5m"}),
                Panel(
                    "Dependencies down",
                    "short",
                    {"{{job}} {{dependency}}": "dependency_up == 0"},
                    "Every series here is a dependency that failed its last check.",
                ),
            ],
        ],
    ),
    Dashboard(
        "gatehouse-auth",
        "Gatehouse — auth-service",
        "Sign-up, sign-in and tokens: requests, the outbox of user events, and the JWKS.",
        [
            red("auth-service"),
            outbox("auth-service"),
            [
                dependencies("auth-service"),
                Panel(
                    "Sign-in attempts refused (429, credentials rule)",
                    "ops",
                    {"refused": rate("gateway_rate_limited_total", 'rule="credentials"')},
                    "Alert GatewayCredentialStuffing above 1/s for 5 min.",
                ),
                Panel(
                    "Sign-in answers by status",
                    "ops",
                    {
                        "{{status}}": rate(
                            "http_requests_total", 'job="auth-service",route=~"/auth/login.*"', "status"
                        )
                    },
                ),
            ],
            [
                Panel(
                    "Failed sign-ins by method",
                    "ops",
                    {"{{method}}": rate("auth_sign_in_failures_total", by="method")},
                    "Alert AuthSignInFailuresHigh above 2/s for 10 min.",
                ),
                Panel(
                    "Refused by auth-service's throttling",
                    "ops",
                    {"{{action}} {{scope}}": rate("auth_throttled_total", by="action, scope")},
                    "Alert AuthThrottlingHigh above 1/s for 10 min.",
                ),
            ],
            [
                Panel(
                    "Bot checks by outcome",
                    "ops",
                    {"{{action}} {{outcome}}": rate("auth_captcha_checks_total", by="action, outcome")},
                    "required: no token sent; failed: refused by siteverify; unavailable: siteverify "
                    "did not answer (the attempt was refused). Alert AuthBotCheckUnavailable.",
                ),
            ],
        ],
    ),
    Dashboard(
        "gatehouse-billing",
        "Gatehouse — billing-service",
        "Plans and subscriptions, Stripe webhooks from receipt to applied, and billing's events.",
        [
            red("billing-service"),
            [
                Panel(
                    "Stripe webhooks received",
                    "ops",
                    {"new={{new}}": rate("billing_stripe_webhooks_received_total", by="new")},
                ),
                Panel(
                    "Stripe events applied by outcome",
                    "ops",
                    {"{{type}} {{outcome}}": rate("billing_stripe_events_applied_total", by="type, outcome")},
                ),
                Panel(
                    "Receive-to-apply lag and failures",
                    "s",
                    {
                        "oldest unapplied": "max(billing_stripe_event_backlog_seconds)",
                        "applied p99": quantile(0.99, "billing_stripe_event_apply_lag_seconds"),
                        "failures (15 min)": rate(
                            "billing_stripe_event_failures_total", window="15m", of="increase"
                        ),
                    },
                    "Alerts BillingStripeEventsBacklog (> 5 min), BillingStripeEventsApplySlow (p99 > 60 s) "
                    "and BillingStripeEventsFailing.",
                ),
                Panel(
                    "Stripe API errors by kind",
                    "ops",
                    {"{{kind}}": rate("billing_stripe_api_errors_total", by="kind")},
                    "Alert BillingStripeApiErrors on unreachable + error above 10 in 10 min.",
                ),
            ],
            outbox("billing-service"),
            consumer("billing-service"),
            [dependencies("billing-service"), tokens("billing-service")],
        ],
    ),
    Dashboard(
        "gatehouse-notification",
        "Gatehouse — notification-service",
        "Every email once: events consumed, SMTP outcomes and hand-off time.",
        [
            red("notification-service"),
            consumer("notification-service"),
            [
                Panel(
                    "Emails by outcome",
                    "ops",
                    {
                        "sent": rate(EMAILS),
                        "retried": rate("notification_emails_retried_total"),
                        "failed": rate("notification_emails_failed_total"),
                        "suppressed": rate("notification_emails_suppressed_total"),
                    },
                ),
                Panel("Emails sent by template", "ops", {"{{template}}": rate(EMAILS, by="template")}),
                Panel(
                    "SMTP hand-off p50 / p99", "s", {"p50": quantile(0.5, SMTP), "p99": quantile(0.99, SMTP)}
                ),
            ],
            [dependencies("notification-service")],
        ],
    ),
    Dashboard(
        "gatehouse-journeys",
        "Gatehouse — journeys",
        "A sign-up and a payment followed across services: each stage's rate should track the one before.",
        [
            [
                Panel(
                    # 202 answers a known address too (no enumeration): user.registered is the new ones.
                    "Sign-up: registrations answered → user.registered published",
                    "ops",
                    {
                        "202 at /auth/register": rate(
                            "http_requests_total", 'job="auth-service",route="/auth/register",status="202"'
                        ),
                        "user.registered published": rate(
                            "gatehouse_outbox_published_total",
                            'job="auth-service",event_type="user.registered"',
                        ),
                    },
                ),
                Panel(
                    "Sign-up: consumed → verification email sent",
                    "ops",
                    {
                        "handled by notification": rate(
                            "gatehouse_events_handled_total",
                            'job="notification-service",event_type="user.registered"',
                        ),
                        "handled by billing": rate(
                            "gatehouse_events_handled_total",
                            'job="billing-service",event_type="user.registered"',
                        ),
                        "verification emails sent": rate(EMAILS, 'template="email_verification"'),
                    },
                ),
                Panel(
                    "Sign-up: where it waits",
                    "s",
                    {
                        "auth outbox lag": 'max(gatehouse_outbox_lag_seconds{job="auth-service"})',
                        "SMTP p99": quantile(0.99, SMTP),
                    },
                ),
            ],
            [
                Panel(
                    "Payment: webhook received → applied",
                    "ops",
                    {
                        "received (new)": rate("billing_stripe_webhooks_received_total", 'new="true"'),
                        "applied": rate("billing_stripe_events_applied_total"),
                    },
                ),
                Panel(
                    "Payment: billing events → emails",
                    "ops",
                    {
                        "payment.succeeded published": rate(
                            "gatehouse_outbox_published_total",
                            'job="billing-service",event_type="payment.succeeded"',
                        ),
                        "receipts sent": rate(EMAILS, 'template="payment_succeeded"'),
                    },
                ),
                Panel(
                    "Payment: where it waits",
                    "s",
                    {
                        "webhook backlog": "max(billing_stripe_event_backlog_seconds)",
                        "billing outbox lag": 'max(gatehouse_outbox_lag_seconds{job="billing-service"})',
                    },
                ),
            ],
        ],
    ),
]


def panel_json(panel: Panel, panel_id: int, x: int, y: int, width: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": width, "h": HEIGHT},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [
            {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend}
            for n, (legend, expr) in enumerate(panel.queries.items())
        ],
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    panels = []
    for row, members in enumerate(dashboard.rows):
        width = WIDTH // len(members)
        for column, panel in enumerate(members):
            panels.append(panel_json(panel, len(panels) + 1, column * width, row * HEIGHT, width))
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["gatehouse"],
        "editable": True,
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus"}
            ]
        },
        "panels": panels,
    }


def rendered() -> dict[str, str]:
    """file name → the JSON text for each dashboard."""
    return {
        f"{dashboard.uid}.json": json.dumps(dashboard_json(dashboard), indent=2, ensure_ascii=False) + "\n"
        for dashboard in DASHBOARDS
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"wrote {(OUT / name).relative_to(HERE.parents[2])}")


if __name__ == "__main__":
    main()
