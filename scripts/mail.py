"""Print the newest email `make run` caught for an address (headers and text part), decoded.

uv run python scripts/mail.py ada@example.com
"""

from __future__ import annotations

import email.policy
import sys
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

MAILDIR = Path(__file__).resolve().parents[1] / "var" / "mail" / "new"


def newest_to(address: str) -> EmailMessage | None:
    newest: tuple[float, EmailMessage] | None = None
    for path in MAILDIR.glob("*"):
        message = BytesParser(policy=email.policy.default).parsebytes(path.read_bytes())
        if isinstance(message, EmailMessage) and str(message["To"]).lower() == address.lower():
            mtime = path.stat().st_mtime
            if newest is None or mtime > newest[0]:
                newest = (mtime, message)
    return newest[1] if newest else None


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/mail.py ADDRESS")
    message = newest_to(sys.argv[1])
    if message is None:
        sys.exit(f"no email to {sys.argv[1]} in {MAILDIR}")
    body = message.get_body(preferencelist=("plain",))
    print(f"Subject: {message['Subject']}\n")
    print(body.get_content() if body is not None else "")


if __name__ == "__main__":
    main()
