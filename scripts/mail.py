"""Print the newest email `make run` caught for an address (headers and text part), decoded.

uv run python scripts/mail.py ada@example.com
"""

from __future__ import annotations

import sys
from pathlib import Path

from gatehouse_emulators.smtp import read_maildir

MAILDIR = Path(__file__).resolve().parents[1] / "var" / "mail"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/mail.py ADDRESS")
    messages = read_maildir(MAILDIR, sys.argv[1]) if (MAILDIR / "new").exists() else []
    if not messages:
        sys.exit(f"no email to {sys.argv[1]} in {MAILDIR}")
    message = messages[-1]
    body = message.get_body(preferencelist=("plain",))
    print(f"Subject: {message['Subject']}\n")
    print(body.get_content() if body is not None else "")


if __name__ == "__main__":
    main()
