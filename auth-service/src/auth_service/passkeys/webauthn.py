"""WebAuthn ceremonies through py_webauthn: the only module that imports it. Its types and errors
stop here: the rules get `NewPasskey` / `Assertion` and our `PasskeyRejected`.

py_webauthn is imported by the method that needs it, not with this module: it brings pyOpenSSL
and cbor2 (a few hundred ms of every start of auth-service, for the few requests that are passkey
ceremonies). After the first ceremony an import is a lookup in `sys.modules`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from auth_service.errors import PasskeyRejected
from auth_service.models import User
from auth_service.settings import Settings


@dataclass(frozen=True)
class NewPasskey:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    backup_eligible: bool
    backed_up: bool


@dataclass(frozen=True)
class Assertion:
    new_sign_count: int
    backup_eligible: bool
    backed_up: bool


@dataclass(frozen=True)
class Ceremony:
    """Options for the browser (JSON, as `navigator.credentials.*` wants them once decoded) and
    the challenge in them."""

    options: dict[str, Any]
    challenge: bytes


class WebAuthn:
    def __init__(self, settings: Settings) -> None:
        self._rp_id = settings.webauthn_rp_id
        self._rp_name = settings.webauthn_rp_name
        self._origins = list(settings.webauthn_origins)
        self._timeout_ms = settings.webauthn_challenge_ttl_seconds * 1000

    def registration(self, user: User, existing: list[bytes]) -> Ceremony:
        """A discoverable credential with user verification; the user's passkeys are excluded."""
        from webauthn import generate_registration_options, options_to_json
        from webauthn.helpers.structs import (
            AuthenticatorSelectionCriteria,
            PublicKeyCredentialDescriptor,
            ResidentKeyRequirement,
            UserVerificationRequirement,
        )

        options = generate_registration_options(
            rp_id=self._rp_id,
            rp_name=self._rp_name,
            user_id=user.id.bytes,
            user_name=user.email,
            user_display_name=user.username,
            timeout=self._timeout_ms,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in existing],
        )
        return Ceremony(options=json.loads(options_to_json(options)), challenge=options.challenge)

    def authentication(self) -> Ceremony:
        """No allowed credentials listed: the authenticator offers its discoverable ones."""
        from webauthn import generate_authentication_options, options_to_json
        from webauthn.helpers.structs import UserVerificationRequirement

        options = generate_authentication_options(
            rp_id=self._rp_id,
            timeout=self._timeout_ms,
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return Ceremony(options=json.loads(options_to_json(options)), challenge=options.challenge)

    @staticmethod
    def challenge_of(credential: dict[str, Any]) -> bytes:
        """The challenge the browser signed (in clientDataJSON), to find the ceremony it belongs to."""
        from webauthn.helpers import base64url_to_bytes, parse_client_data_json
        from webauthn.helpers.exceptions import WebAuthnException

        try:
            raw = base64url_to_bytes(credential["response"]["clientDataJSON"])
            return parse_client_data_json(raw).challenge
        except (KeyError, TypeError, ValueError, WebAuthnException) as exc:
            raise PasskeyRejected("The passkey response is malformed.") from exc

    @staticmethod
    def credential_id_of(credential: dict[str, Any]) -> bytes:
        from webauthn.helpers import base64url_to_bytes

        try:
            return base64url_to_bytes(credential["rawId"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PasskeyRejected("The passkey response is malformed.") from exc

    @staticmethod
    def user_handle_of(credential: dict[str, Any]) -> bytes | None:
        from webauthn.helpers import base64url_to_bytes

        try:
            handle = credential["response"].get("userHandle")
            return base64url_to_bytes(handle) if handle else None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PasskeyRejected("The passkey response is malformed.") from exc

    def verify_registration(self, credential: dict[str, Any], challenge: bytes) -> NewPasskey:
        from webauthn import verify_registration_response
        from webauthn.helpers.exceptions import WebAuthnException
        from webauthn.helpers.structs import CredentialDeviceType

        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self._rp_id,
                expected_origin=self._origins,
                require_user_verification=True,
            )
        except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
            raise PasskeyRejected(f"The passkey was not accepted: {exc}") from exc
        return NewPasskey(
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            aaguid=verified.aaguid,
            backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            backed_up=verified.credential_backed_up,
        )

    def verify_authentication(
        self, credential: dict[str, Any], challenge: bytes, public_key: bytes, sign_count: int
    ) -> Assertion:
        """Checks the signature, challenge, origin, RP ID, user verification, and that the sign
        counter moved forward (a cloned authenticator's would not)."""
        from webauthn import verify_authentication_response
        from webauthn.helpers.exceptions import WebAuthnException
        from webauthn.helpers.structs import CredentialDeviceType

        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self._rp_id,
                expected_origin=self._origins,
                credential_public_key=public_key,
                credential_current_sign_count=sign_count,
                require_user_verification=True,
            )
        except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
            raise PasskeyRejected(f"The passkey was not accepted: {exc}") from exc
        return Assertion(
            new_sign_count=verified.new_sign_count,
            backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            backed_up=verified.credential_backed_up,
        )
