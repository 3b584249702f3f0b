"""Event data contracts. `REGISTRY` maps each event type (= routing key) to its data model."""

from gatehouse_contracts.envelope import EventData
from gatehouse_contracts.events.auth import (
    AUTH_EVENTS,
    IdentityLinked,
    IdentityUnlinked,
    LoginCodeRequested,
    MfaDisabled,
    MfaEnabled,
    MfaResetByAdmin,
    NewSignIn,
    PasskeyAdded,
    PasskeyRemoved,
    PasswordChanged,
    PasswordResetRequested,
    RecoveryCodeUsed,
    SessionRevoked,
    UserDeactivated,
    UserDeleted,
    UserEmailChanged,
    UserEmailVerificationRequested,
    UserErased,
    UserReactivated,
    UserRegistered,
    UserSignUpAttempted,
    UserVerified,
)
from gatehouse_contracts.events.billing import (
    BILLING_EVENTS,
    PaymentDisputed,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    SubscriptionActivated,
    SubscriptionCancelScheduled,
    SubscriptionEnded,
    SubscriptionPastDue,
    SubscriptionPlanChanged,
    SubscriptionRenewed,
    SubscriptionResumed,
    SubscriptionTrialEnding,
)

REGISTRY: dict[str, type[EventData]] = {model.event_type: model for model in (*AUTH_EVENTS, *BILLING_EVENTS)}


def parse_data(event_type: str, data: dict[str, object]) -> EventData:
    """Validate an event's `data` against its contract; KeyError for an unknown type."""
    return REGISTRY[event_type].model_validate(data)


__all__ = [
    "AUTH_EVENTS",
    "BILLING_EVENTS",
    "REGISTRY",
    "IdentityLinked",
    "IdentityUnlinked",
    "LoginCodeRequested",
    "MfaDisabled",
    "MfaEnabled",
    "MfaResetByAdmin",
    "NewSignIn",
    "PasskeyAdded",
    "PasskeyRemoved",
    "PasswordChanged",
    "PasswordResetRequested",
    "PaymentDisputed",
    "PaymentFailed",
    "PaymentRefunded",
    "PaymentSucceeded",
    "RecoveryCodeUsed",
    "SessionRevoked",
    "SubscriptionActivated",
    "SubscriptionCancelScheduled",
    "SubscriptionEnded",
    "SubscriptionPastDue",
    "SubscriptionPlanChanged",
    "SubscriptionRenewed",
    "SubscriptionResumed",
    "SubscriptionTrialEnding",
    "UserDeactivated",
    "UserDeleted",
    "UserEmailChanged",
    "UserEmailVerificationRequested",
    "UserErased",
    "UserReactivated",
    "UserRegistered",
    "UserSignUpAttempted",
    "UserVerified",
    "parse_data",
]
