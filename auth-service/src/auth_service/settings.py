"""auth-service settings: environment variables prefixed AUTH_ (e.g. AUTH_DATABASE_URL)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, FilePath, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from gatehouse_platform.clientip import TrustedProxyCidrs
from gatehouse_platform.settings import ServiceSettings

# Development-only defaults; `Settings` refuses them in production.
DEV_KEY_ENCRYPTION_KEY = "ZGV2LW9ubHkta2V5LWVuY3J5cHRpb24ta2V5LTMyYiE="
DEV_TOKEN_SECRET = "dev-only-token-secret-change-me"
DEV_API_KEY_PEPPER = "dev-only-api-key-pepper-change-me"

SITEVERIFY_URLS = {
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
    "hcaptcha": "https://api.hcaptcha.com/siteverify",
}


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/gatehouse_auth"
    public_url: str = Field(default="http://127.0.0.1:8000", description="Base URL clients reach us at.")

    # Tokens
    issuer: str = "http://127.0.0.1:8000/auth"
    audience: str = "gatehouse"
    access_token_ttl_seconds: int = Field(default=900, ge=60)
    refresh_token_ttl_seconds: int = Field(
        default=14 * 86400, ge=60, description="Idle lifetime of one refresh token"
    )
    session_max_age_seconds: int = Field(
        default=30 * 86400, ge=60, description="Absolute lifetime of a session"
    )
    refresh_reuse_grace_seconds: int = Field(default=10, ge=0)
    token_secret: str = Field(
        default=DEV_TOKEN_SECRET, min_length=16, description="HMAC key for refresh successors"
    )
    api_key_pepper: str = Field(
        default=DEV_API_KEY_PEPPER,
        min_length=16,
        description="HMAC-SHA-256 key of stored API-key hashes: a stolen table without it proves nothing",
    )
    api_keys_per_user: int = Field(default=25, ge=1, description="Active API keys a person may hold")
    key_encryption_key: str = Field(
        default=DEV_KEY_ENCRYPTION_KEY, description="Fernet key encrypting stored private signing keys"
    )
    signing_key_pem: str | None = Field(
        default=None, description="PEM private key to sign with, instead of stored keys"
    )
    key_cache_seconds: int = 30
    key_publish_ahead_seconds: int = Field(
        default=120,
        ge=0,
        description="A rotated-in key is in the JWKS this long before it signs: at least the key cache "
        "plus the verifiers' refetch spacing (30 s each), so no verifier meets a kid it cannot fetch",
    )

    # Refresh cookie
    refresh_cookie_name: str = "gatehouse_refresh"
    refresh_cookie_path: str = "/auth"
    cookie_secure: bool | None = Field(default=None, description="Defaults to true outside development/test")

    # Passwords (OWASP: Argon2id m=19 MiB, t=2, p=1 at least)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19456, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    argon2_threads: int = Field(
        default=0, ge=0, description="Hashing threads; 0 = one per CPU core (more only thrash memory)"
    )
    argon2_thread_niceness: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Hashing threads run at this lower priority so request handling stays responsive",
    )

    # Breached passwords: Have I Been Pwned's Pwned Passwords range API (only the first five hex
    # characters of the password's SHA-1 leave the service). `make run` and tests use emulators/pwned.
    pwned_passwords_check: bool | None = Field(
        default=None,
        description="Refuse passwords seen in breaches on register, reset and change; defaults to on in "
        "production",
    )
    pwned_passwords_url: str = Field(
        default="https://api.pwnedpasswords.com",
        description="Base URL of the range API (`{url}/range/ABCDE`)",
    )
    pwned_passwords_timeout_seconds: float = Field(
        default=2.0, gt=0, description="After this the check is skipped (fails open) with a warning"
    )
    pwned_passwords_threshold: int = Field(
        default=1, ge=1, description="A password seen in breaches at least this often is refused"
    )

    # One-time tokens and codes
    verification_token_ttl_seconds: int = 24 * 3600
    reset_token_ttl_seconds: int = 3600
    login_code_ttl_seconds: int = 600
    login_code_max_attempts: int = 5

    # Second factors and step-up
    totp_issuer: str = Field(default="Gatehouse", description="The name authenticator apps show")
    totp_valid_window: int = Field(
        default=1, ge=0, le=3, description="Time-steps (30 s) accepted either side of now, for clock drift"
    )
    mfa_token_ttl_seconds: int = Field(
        default=300, ge=30, description="How long a sign-in waits for its second factor"
    )
    mfa_max_attempts: int = Field(default=5, ge=1, description="Wrong codes before an mfa_token dies")
    recent_auth_seconds: int = Field(
        default=300, ge=0, description="Sensitive actions need a sign-in (auth_time) at most this old"
    )
    require_mfa_for_admins: bool | None = Field(
        default=None,
        description="Admin routes refuse admins without a second factor; defaults to on in production",
    )

    # Passkeys (WebAuthn). Browsers refuse an IP address as RP ID: local development uses localhost.
    webauthn_rp_id: str = Field(default="localhost", description="The domain passkeys are bound to")
    webauthn_rp_name: str = "Gatehouse"
    webauthn_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:8000"],
        description="Origins a passkey ceremony may come from, comma-separated",
    )
    webauthn_challenge_ttl_seconds: int = Field(default=300, ge=30)

    # Throttling (limits syntax: "N/period")
    rate_limits_enabled: bool = True
    redis_key_prefix: str = "gatehouse-auth"
    credential_ip_limit: str = "30/minute"
    credential_account_limit: str = "10/minute"
    request_ip_limit: str = "10/minute"
    request_account_limit: str = "3/minute"
    failures_before_backoff: int = 5
    trusted_proxies: TrustedProxyCidrs = Field(
        default_factory=list,
        description="CIDRs (the gateway's) whose X-Forwarded-For is believed: per-address limits and "
        "the sessions' addresses count the person, not the gateway",
    )
    max_backoff_seconds: int = 900
    geoip_database: FilePath | None = Field(
        None,
        description="A MaxMind-format city or country database (.mmdb, e.g. GeoLite2-City): the audit "
        "trail and the new sign-in email then show each address's approximate place",
    )

    # Bot checks: a CAPTCHA (Cloudflare Turnstile or hCaptcha) on register, login and password reset.
    # `make run` and tests point the siteverify URL at emulators/captcha.
    captcha_mode: Literal["off", "always", "adaptive"] = Field(
        default="off",
        description="off; always (every register, login and reset needs a token); adaptive (only an "
        "address or account past the failure threshold)",
    )
    captcha_provider: Literal["turnstile", "hcaptcha"] = "turnstile"
    captcha_site_key: str | None = Field(default=None, description="The public key the widget renders with")
    captcha_secret_key: str | None = Field(default=None, description="The secret siteverify is called with")
    captcha_siteverify_url: str | None = Field(
        default=None, description="Default: the provider's (Cloudflare's or hCaptcha's) siteverify"
    )
    captcha_timeout_seconds: float = Field(
        default=3.0, gt=0, description="After this a required check fails closed: 503 captcha-unavailable"
    )
    captcha_failure_threshold: int = Field(
        default=3,
        ge=1,
        description="adaptive: failed sign-ins (of an address, or for an account) before a token is asked",
    )
    captcha_failure_window_seconds: int = Field(
        default=3600, ge=60, description="adaptive: how long an address's failed sign-ins are remembered"
    )
    captcha_hostnames: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hostnames a solved widget may come from (the answer's `hostname`), comma-separated; "
        "empty = any",
    )

    # Sign in with Google / GitHub: a provider is offered once its client id and secret are set.
    # The URLs default to the real providers; `make run` and tests point them at emulators/oauth.
    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"
    github_client_id: str | None = None
    github_client_secret: str | None = None
    github_authorize_url: str = "https://github.com/login/oauth/authorize"
    github_token_url: str = "https://github.com/login/oauth/access_token"
    github_api_url: str = "https://api.github.com"
    oauth_redirect_allowlist: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins or URL prefixes a sign-in may send the browser back to, comma-separated",
    )
    oauth_redirect_cookie_path: str | None = Field(
        default=None,
        description="Path of the refresh cookie when a sign-in returns to redirect_to (default: the refresh "
        "cookie's path); the web front reads it on /session",
    )
    oauth_state_ttl_seconds: int = Field(default=600, ge=30)
    oauth_http_timeout_seconds: float = Field(default=10.0, gt=0)

    # Security audit trail and new sign-in alerts
    audit_retention_days: int = Field(
        default=400, ge=1, description="Audit events older than this are purged by the beat"
    )
    new_sign_in_window_days: int = Field(
        default=90,
        ge=1,
        description="A sign-in from a device or network not seen in a sign-in this recent emails the user",
    )

    # Account deletion
    deletion_grace_days: float = Field(
        default=7,
        ge=0,
        description="A deleted account can be restored (sign in and cancel) this long before it is erased",
    )
    erase_interval_seconds: int = Field(
        default=900, ge=10, description="How often the beat erases the accounts whose grace is over"
    )

    # Organizations
    org_default_member_limit: int = Field(
        default=50, ge=1, description="A new org's member limit (members and pending invitations)"
    )
    org_max_member_limit: int = Field(
        default=1000, ge=1, description="The highest member limit an owner may set"
    )
    org_invitation_ttl_days: float = Field(default=7, gt=0, description="How long an invitation link works")
    org_invitation_limit: str = Field(
        default="20/hour", description="Invitations an org may send (and each inviter), per period"
    )
    org_domain_verification_url: str = Field(
        default="https://{domain}/.well-known/gatehouse-org-verification.txt",
        description="Where a claimed domain proves it is the org's: the file must hold the token",
    )
    org_domain_verification_timeout_seconds: float = Field(default=5.0, gt=0)

    # Events consumed (billing's org.seat_limit_changed), in the API process
    consume_events: bool = Field(default=True, description="Run the event consumer in the API process.")
    consumer_name: str = Field(default="auth-service", description="Queue name of the consumer.")
    consumer_prefetch: int = Field(default=8, ge=1)
    consumer_retry_delays: list[float] = Field(default=[1, 10, 60, 300], min_length=1)

    # Celery (broker = RabbitMQ)
    celery_broker_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    purge_interval_seconds: int = 3600

    @field_validator("oauth_redirect_allowlist", "webauthn_origins", "captcha_hostnames", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def refresh_cookie_secure(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment == "production"

    @property
    def checks_pwned_passwords(self) -> bool:
        if self.pwned_passwords_check is not None:
            return self.pwned_passwords_check
        return self.is_production

    @property
    def admins_need_mfa(self) -> bool:
        if self.require_mfa_for_admins is not None:
            return self.require_mfa_for_admins
        return self.is_production

    @property
    def captcha_verify_url(self) -> str:
        if self.captcha_siteverify_url:
            return self.captcha_siteverify_url
        return SITEVERIFY_URLS[self.captcha_provider]

    @model_validator(mode="after")
    def _captcha_needs_keys(self) -> Settings:
        if self.captcha_mode != "off" and not (self.captcha_site_key and self.captcha_secret_key):
            raise ValueError(
                "AUTH_CAPTCHA_SITE_KEY and AUTH_CAPTCHA_SECRET_KEY must be set with AUTH_CAPTCHA_MODE"
            )
        if self.captcha_mode == "adaptive" and self.captcha_failure_threshold >= self.failures_before_backoff:
            # the challenge must come before the back-off, or it never gets a chance to stop a bot
            raise ValueError("AUTH_CAPTCHA_FAILURE_THRESHOLD must be below AUTH_FAILURES_BEFORE_BACKOFF")
        return self

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> Settings:
        if self.is_production:
            if self.token_secret == DEV_TOKEN_SECRET:
                raise ValueError("AUTH_TOKEN_SECRET must be set in production")
            if self.api_key_pepper == DEV_API_KEY_PEPPER:
                raise ValueError("AUTH_API_KEY_PEPPER must be set in production")
            if self.key_encryption_key == DEV_KEY_ENCRYPTION_KEY and not self.signing_key_pem:
                raise ValueError(
                    "AUTH_KEY_ENCRYPTION_KEY (or AUTH_SIGNING_KEY_PEM) must be set in production"
                )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
