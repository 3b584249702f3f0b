import mailbox
import smtplib
from email.message import EmailMessage
from pathlib import Path

from gatehouse_emulators.smtp import start_catcher
from gatehouse_platform.testing import free_port


def test_a_message_sent_over_smtp_lands_in_the_maildir(tmp_path: Path) -> None:
    port = free_port()
    controller = start_catcher(tmp_path / "mail", port=port)
    try:
        message = EmailMessage()
        message["From"] = "Gatehouse <no-reply@gatehouse.test>"
        message["To"] = "ada@example.com"
        message["Subject"] = "Verify your email"
        message.set_content("https://app.example.com/verify?token=abc")
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(message)
    finally:
        controller.stop()
    stored = list(mailbox.Maildir(str(tmp_path / "mail")))
    assert len(stored) == 1
    assert stored[0]["To"] == "ada@example.com"
    assert stored[0]["Subject"] == "Verify your email"
    assert "token=abc" in stored[0].get_payload()
