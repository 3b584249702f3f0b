"""The Pwned Passwords emulator over real HTTP: the range API's answer format (with and without
padding), its refusal of a bad prefix, seeding, recorded requests and faults."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from gatehouse_emulators.pwned import DEFAULT_BREACHED, create_app, sha1_hex
from gatehouse_platform.testing import serve_in_thread


@pytest.fixture
def pwned() -> Iterator[httpx.Client]:
    with serve_in_thread(create_app()) as base, httpx.Client(base_url=base, timeout=10) as http:
        yield http


def lines_of(response: httpx.Response) -> dict[str, int]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    pairs = [line.split(":") for line in response.text.split("\r\n")]
    return {suffix: int(count) for suffix, count in pairs}


def test_a_seeded_password_is_listed_under_its_prefix(pwned: httpx.Client) -> None:
    digest = sha1_hex("Password1234!")
    listed = lines_of(pwned.get(f"/range/{digest[:5]}"))
    assert listed == {digest[5:]: DEFAULT_BREACHED["Password1234!"]}
    # The prefix is case-insensitive, as the real API's is
    assert lines_of(pwned.get(f"/range/{digest[:5].lower()}")) == listed


def test_padding_adds_zero_count_lines_only(pwned: httpx.Client) -> None:
    seeded = pwned.post("/_emulator/passwords", json={"password": "hunter2 but longer", "count": 12})
    assert seeded.status_code == 201
    digest = seeded.json()["sha1"]
    assert digest == sha1_hex("hunter2 but longer")
    listed = lines_of(pwned.get(f"/range/{digest[:5]}", headers={"Add-Padding": "true"}))
    assert 800 <= len(listed) < 1000
    assert listed.pop(digest[5:]) == 12
    assert set(listed.values()) == {0}
    assert all(len(suffix) == 35 and suffix == suffix.upper() for suffix in listed)


def test_an_unknown_prefix_answers_empty_and_a_bad_one_400(pwned: httpx.Client) -> None:
    assert pwned.get("/range/00000").text == ""
    bad = pwned.get("/range/XYZ12")
    assert bad.status_code == 400
    assert pwned.get("/range/1234").status_code == 400


def test_requests_are_recorded_and_faults_apply_once(pwned: httpx.Client) -> None:
    assert pwned.post("/_emulator/faults", json={"status": 503}).status_code == 201
    assert pwned.get("/range/ABCDE", headers={"Add-Padding": "true"}).status_code == 503
    assert pwned.get("/range/ABCDE").status_code == 200
    assert pwned.post("/_emulator/faults", json={"delay_seconds": 0.5}).status_code == 201
    started = time.monotonic()
    assert pwned.get("/range/ABCDE").status_code == 200
    assert time.monotonic() - started >= 0.5
    recorded = pwned.get("/_emulator/requests").json()
    assert [r["path"] for r in recorded] == ["/range/ABCDE"] * 3
    assert recorded[0]["headers"]["add-padding"] == "true"
    assert pwned.post("/_emulator/reset").status_code == 204
    assert pwned.get("/_emulator/requests").json() == []
