"""SMTP catcher: accepts every message and writes it to a Maildir (what `make run` and tests read).

gatehouse-smtp-catcher --port 1025 --maildir var/mail
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import signal
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def start_catcher(maildir: Path, *, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    """Start the server in a background thread; `controller.stop()` ends it."""
    maildir.parent.mkdir(parents=True, exist_ok=True)
    for sub in ("tmp", "new", "cur"):  # Maildir(create=True) skips these when the folder exists
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    controller = Controller(Mailbox(maildir), hostname=host, port=port)
    controller.start()
    return controller


def read_maildir(maildir: Path, to: str) -> list[EmailMessage]:
    """The messages the catcher wrote to `maildir` addressed to `to`, oldest first, parsed."""
    found: list[tuple[float, EmailMessage]] = []
    for path in (maildir / "new").iterdir():
        message = BytesParser(policy=email.policy.default).parsebytes(path.read_bytes())
        if isinstance(message, EmailMessage) and str(message["To"]).lower() == to.lower():
            found.append((path.stat().st_mtime, message))
    return [message for _, message in sorted(found, key=lambda pair: pair[0])]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--maildir", type=Path, default=Path("var/mail"))
    args = parser.parse_args()
    controller = start_catcher(args.maildir, host=args.host, port=args.port)
    print(f"SMTP catcher on {args.host}:{args.port}, writing to {args.maildir.resolve()}", flush=True)

    async def wait_for_signal() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    try:
        asyncio.run(wait_for_signal())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
