"""Sign-in throttling per account, on top of the per-address limit: many addresses cannot guess one
account's password at full speed, and the owner is never locked out for good."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sigdesk.auth import throttle
from sigdesk.db import utcnow
from sigdesk.models import SignInThrottle
from tests.commanding import cli
from tests.conftest import PASSWORD, Auth

pytestmark = pytest.mark.database


def attempt(auth: Auth, email: str, password: str, number: int):
    """A sign-in from a different address each time, as from a botnet: the per-address limit never bites."""
    address = {"REMOTE_ADDR": f"10.0.{number // 250}.{number % 250 + 1}"}
    token = auth.csrf("/login")
    return auth.client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}, environ_base=address
    )


@pytest.fixture
def stranger(app) -> Auth:
    """A browser that never signed in to anyone's account."""
    return Auth(app, app.test_client())


def test_after_five_failures_from_many_addresses_the_account_is_locked(app, owner, stranger):
    statuses = [attempt(stranger, owner.email, "wrong password!", n).status_code for n in range(5)]
    assert statuses == [401] * 5
    locked = attempt(stranger, owner.email, PASSWORD, 5)  # even the right password waits
    assert locked.status_code == 429
    assert "Too many failed sign-ins for this account" in locked.get_data(as_text=True)
    assert 0 < int(locked.headers["Retry-After"]) <= 60
    assert stranger.client.get("/account/").status_code == 302


def test_unknown_addresses_are_locked_the_same_way_so_the_lock_reveals_nothing(app, owner, stranger):
    for n in range(5):
        attempt(stranger, "nobody@example.com", "wrong password!", n)
    assert attempt(stranger, "nobody@example.com", "wrong password!", 5).status_code == 429


def test_the_lock_window_doubles_up_to_fifteen_minutes():
    windows = [throttle.lock_window(failures) for failures in range(1, 12)]
    minutes = [window.total_seconds() / 60 if window else 0 for window in windows]
    assert minutes == [0, 0, 0, 0, 1, 2, 4, 8, 15, 15, 15]


def test_attempts_while_locked_do_not_lengthen_the_lock(app, owner, stranger):
    for n in range(5):
        attempt(stranger, owner.email, "wrong password!", n)
    for n in range(5, 15):
        attempt(stranger, owner.email, "wrong password!", n)
    with app.extensions["sigdesk"].database.session() as session:
        row = session.get(SignInThrottle, owner.email)
        assert row.failures == 5
        assert row.locked_until - utcnow() <= timedelta(minutes=1)


def test_the_lock_ends_by_itself_and_a_success_clears_the_count(app, owner, stranger):
    for n in range(5):
        attempt(stranger, owner.email, "wrong password!", n)
    with app.extensions["sigdesk"].database.session() as session:
        session.get(SignInThrottle, owner.email).locked_until = utcnow() - timedelta(seconds=1)
    assert attempt(stranger, owner.email, PASSWORD, 6).status_code == 302
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(SignInThrottle, owner.email) is None


def test_a_browser_that_signed_in_to_the_account_before_is_not_locked_out(app, auth, client, owner, stranger):
    auth.logout()  # the owner's own browser keeps its known-device cookie
    for n in range(5):
        attempt(stranger, owner.email, "wrong password!", n)
    assert attempt(stranger, owner.email, PASSWORD, 6).status_code == 429
    assert auth.login(owner).status_code == 302
    assert client.get("/account/").status_code == 200


def test_a_forged_known_device_cookie_does_not_lift_the_lock(app, owner, stranger):
    for n in range(5):
        attempt(stranger, owner.email, "wrong password!", n)
    stranger.client.set_cookie("sigdesk_device", "WzFd.forged.signature")
    assert attempt(stranger, owner.email, PASSWORD, 6).status_code == 429


def test_wrong_second_factor_codes_count_towards_the_lock(app, auth, owner, stranger):
    auth.enrol_totp(owner)
    for n in range(5):
        response = attempt(stranger, owner.email, PASSWORD, n)
        assert "/login/verify" in response.headers["Location"]
        wrong = stranger.post("/login/verify", {"code": "000000"}, form_page="/login/verify")
        assert wrong.status_code == 401
    assert attempt(stranger, owner.email, PASSWORD, 6).status_code == 429


def test_the_cli_clears_a_lock(app, owner, stranger):
    for n in range(5):
        attempt(stranger, owner.email, "wrong password!", n)
    assert "Sign-in lock cleared" in cli(app, "user", "unlock", "--email", owner.email).output
    assert attempt(stranger, owner.email, PASSWORD, 6).status_code == 302


def test_the_per_address_limit_still_applies(app, owner, stranger):
    address = {"REMOTE_ADDR": "10.9.9.9"}
    statuses = []
    for n in range(11):
        token = stranger.csrf("/login")
        email = f"guess{n}@example.com"
        data = {"email": email, "password": "nope", "csrf_token": token}
        statuses.append(stranger.client.post("/login", data=data, environ_base=address).status_code)
    assert statuses[:10] == [401] * 10 and statuses[10] == 429


def test_concurrent_attempts_on_a_real_server_cannot_slip_through_before_the_lock(app, owner, live_server):
    """The attempt is counted before bcrypt runs: a burst of parallel guesses gets five checked
    passwords, as one guess after another would, not one per request."""
    import threading

    import httpx

    from sigdesk.auth.services import find_user, hash_password
    from tests.conftest import csrf_from

    app.config["SIGDESK_LOGIN_RATE_LIMIT"] = "1000 per minute"  # the per-address limit is not what is tested
    with app.extensions["sigdesk"].database.session() as session:
        find_user(session, owner.email).password_hash = hash_password(PASSWORD, rounds=10)  # checks take a while
    burst = 12
    start = threading.Barrier(burst)
    statuses: list[int] = []

    def guess(client: httpx.Client, token: str) -> None:
        start.wait()
        response = client.post(
            "/login", data={"email": owner.email, "password": "wrong password!", "csrf_token": token}
        )
        statuses.append(response.status_code)

    clients = [httpx.Client(base_url=live_server.url, timeout=30) for _ in range(burst)]
    try:
        threads = [
            threading.Thread(target=guess, args=(client, csrf_from(client.get("/login").text))) for client in clients
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for client in clients:
            client.close()
    assert sorted(statuses) == [401] * throttle.FREE_FAILURES + [429] * (burst - throttle.FREE_FAILURES)
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(SignInThrottle, owner.email).failures == throttle.FREE_FAILURES


def test_the_right_password_before_a_second_factor_does_not_count_as_a_failure(app, auth, owner, stranger):
    auth.enrol_totp(owner)
    for n in range(8):
        assert "/login/verify" in attempt(stranger, owner.email, PASSWORD, n).headers["Location"]
    with app.extensions["sigdesk"].database.session() as session:
        row = session.get(SignInThrottle, owner.email)
        assert row is None or (row.failures, row.locked_until) == (0, None)


def test_the_cli_unlock_is_audited_as_the_cli(app, owner, stranger):
    from tests.commanding import audit

    for n in range(5):
        attempt(stranger, owner.email, "wrong password!", n)
    cli(app, "user", "unlock", "--email", owner.email.upper())
    entries = audit(app, "login.unlocked")
    assert [(entry.target, entry.channel, entry.actor, entry.detail) for entry in entries] == [
        (owner.email, "cli", None, {"was_locked": True})
    ]


def test_a_day_without_failures_starts_the_count_again(app, owner, stranger):
    with app.extensions["sigdesk"].database.session() as session:
        long_ago = utcnow() - timedelta(days=2)
        session.add(SignInThrottle(email=owner.email, failures=9, last_failure_at=long_ago, locked_until=long_ago))
        session.add(SignInThrottle(email="old@example.com", failures=3, last_failure_at=long_ago))
    assert attempt(stranger, owner.email, "wrong password!", 1).status_code == 401
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(SignInThrottle, owner.email).failures == 1
        assert session.get(SignInThrottle, "old@example.com") is None
