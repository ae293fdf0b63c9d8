from datetime import timedelta

import pyotp
import pytest

from sigdesk.actor import Actor
from sigdesk.auth import services as accounts
from sigdesk.db import utcnow
from sigdesk.models import ApiToken


@pytest.fixture
def store(app):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        yield session, state.cipher


def by(user) -> Actor:
    return Actor(user, "web")


def make_user(session, role="agent", email="amy@example.com"):
    return accounts.create_user(session, email, "Amy", role, "long enough password", rounds=4)


@pytest.mark.database
def test_passwords_are_stored_as_bcrypt_hashes(store):
    session, _ = store
    user = make_user(session)
    assert user.password_hash.startswith("$2b$")
    assert "long enough password" not in user.password_hash
    assert accounts.authenticate(session, "AMY@example.com ", "long enough password").ok


def test_long_passphrases_count_beyond_72_bytes(store):
    session, _ = store
    long = "the quiet otter reads maps " * 3  # 81 characters that zxcvbn accepts
    user = accounts.create_user(session, "long@example.com", "Long", "agent", long + "A", rounds=4)
    assert not accounts.check_password(long + "B", user.password_hash)


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not-an-email", "long enough password", "valid email"),
        ("a@example.com", "short", "at least 10"),
        ("a@example.com", "password123", "too easy to guess. This is a very common password"),
    ],
)
def test_bad_account_input_is_refused(store, email, password, message):
    session, _ = store
    with pytest.raises(accounts.AccountError, match=message):
        accounts.create_user(session, email, "Name", "agent", password, rounds=4)


@pytest.mark.database
def test_the_first_user_must_be_an_owner(store):
    session, _ = store
    agent = accounts.new_user("first@example.com", "First", "agent", "long enough password", rounds=4)
    with pytest.raises(accounts.AccountError, match="first user must be an owner"):
        accounts.add_user(session, Actor.system("cli"), agent)
    assert accounts.user_count(session) == 0
    owner = accounts.new_user("first@example.com", "First", "owner", "long enough password", rounds=4)
    assert accounts.add_user(session, Actor.system("cli"), owner).role == "owner"
    second = accounts.new_user("second@example.com", "Second", "agent", "long enough password", rounds=4)
    assert accounts.add_user(session, Actor.system("cli"), second).role == "agent"


def test_duplicate_emails_are_refused(store):
    session, _ = store
    make_user(session)
    with pytest.raises(accounts.AccountError, match="already exists"):
        make_user(session)


def test_wrong_password_and_unknown_email_are_told_apart_only_in_the_log(store):
    session, _ = store
    make_user(session)
    assert accounts.authenticate(session, "amy@example.com", "wrong").reason == "wrong_password"
    assert accounts.authenticate(session, "nobody@example.com", "wrong").reason == "unknown_email"


def test_a_password_change_or_deactivation_during_the_bcrypt_check_refuses_the_login(store):
    session, _ = store
    user = make_user(session)
    checked = accounts.authenticate(session, "amy@example.com", "long enough password")
    assert accounts.recheck_login(checked).ok
    user.is_active = False
    assert accounts.recheck_login(checked).reason == "deactivated"
    user.is_active = True
    accounts.change_password(
        session, user, accounts.prepare_password_change(user, "long enough password", "a new long password", 4)
    )
    assert accounts.recheck_login(checked).reason == "wrong_password"


def test_of_two_password_changes_prepared_together_only_the_first_is_stored(store):
    session, _ = store
    user = make_user(session)
    first = accounts.prepare_password_change(user, "long enough password", "the first new password", 4)
    second = accounts.prepare_password_change(user, "long enough password", "the second new password", 4)
    accounts.change_password(session, user, first)
    with pytest.raises(accounts.AccountError, match="current password is not correct"):
        accounts.change_password(session, user, second)
    assert accounts.check_password("the first new password", user.password_hash)


def enrol(session, cipher, user):
    secret = accounts.begin_totp_enrolment(session, cipher, user)
    totp = pyotp.TOTP(secret)
    codes = accounts.confirm_totp_enrolment(session, cipher, user, totp.now())
    return totp, codes


@pytest.mark.database
def test_totp_secret_is_encrypted_at_rest(store):
    session, cipher = store
    user = make_user(session)
    secret = accounts.begin_totp_enrolment(session, cipher, user)
    assert secret not in user.totp_secret
    assert accounts.pending_totp_secret(cipher, user) == secret


def test_a_totp_code_works_once(store):
    session, cipher = store
    user = make_user(session)
    totp, _ = enrol(session, cipher, user)
    step = totp.timecode(utcnow())
    assert accounts.verify_totp(session, cipher, user, totp.generate_otp(step + 1))
    assert not accounts.verify_totp(session, cipher, user, totp.generate_otp(step + 1))
    assert not accounts.verify_totp(session, cipher, user, totp.generate_otp(step))


def test_wrong_totp_codes_are_refused(store):
    session, cipher = store
    user = make_user(session)
    totp, _ = enrol(session, cipher, user)
    far = totp.timecode(utcnow() + timedelta(minutes=10))
    for code in ("000000", "12345", "abcdef", "", totp.generate_otp(far)):
        assert not accounts.verify_totp(session, cipher, user, code)


def test_recovery_codes_work_once(store):
    session, cipher = store
    user = make_user(session)
    _, codes = enrol(session, cipher, user)
    assert len(set(codes)) == 10
    assert accounts.use_recovery_code(session, user, codes[0].lower())
    assert not accounts.use_recovery_code(session, user, codes[0])
    assert accounts.remaining_recovery_codes(user) == 9


@pytest.mark.database
def test_api_tokens_are_stored_hashed_and_can_be_revoked(store):
    session, _ = store
    user = make_user(session)
    token = accounts.create_api_token(session, user, "zapier")
    row = session.query(ApiToken).one()
    assert token not in (row.token_hash, row.prefix) and row.prefix == token[:12]
    assert accounts.user_for_token(session, token).id == user.id
    accounts.revoke_api_token(session, row)
    assert accounts.user_for_token(session, token) is None
    assert accounts.user_for_token(session, "sdk_forged") is None


def test_the_last_owner_cannot_be_demoted_or_deactivated(store):
    session, _ = store
    owner = make_user(session, "owner", "o@example.com")
    with pytest.raises(accounts.AccountError, match="at least one active owner"):
        accounts.change_role(session, by(owner), owner, "admin")
    other = make_user(session, "owner", "o2@example.com")
    accounts.set_active(session, by(owner), other, False)
    with pytest.raises(accounts.AccountError, match="at least one active owner"):
        accounts.set_active(session, by(other), owner, False)


def test_admins_cannot_touch_owners_or_make_owners(store):
    session, _ = store
    owner = make_user(session, "owner", "o@example.com")
    admin = make_user(session, "admin", "a@example.com")
    agent = make_user(session, "agent", "g@example.com")
    with pytest.raises(accounts.AccountError):
        accounts.change_role(session, by(admin), owner, "agent")
    with pytest.raises(accounts.AccountError):
        accounts.change_role(session, by(admin), agent, "owner")
    with pytest.raises(accounts.AccountError):
        accounts.set_active(session, by(admin), owner, False)
    accounts.change_role(session, by(admin), agent, "admin")
    assert agent.role == "admin"


def test_role_and_activity_changes_end_existing_sessions(store):
    session, _ = store
    owner = make_user(session, "owner", "o@example.com")
    agent = make_user(session, "agent", "g@example.com")
    before = agent.session_version
    accounts.change_role(session, by(owner), agent, "admin")
    assert agent.session_version == before + 1
