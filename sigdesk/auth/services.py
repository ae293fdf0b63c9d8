"""Accounts: passwords, TOTP two-factor, recovery codes, API tokens and team changes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from dataclasses import dataclass

import bcrypt
import pyotp
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record as audit_record, record_by, record_login
from sigdesk.passwords import password_problem
from sigdesk.auth import throttle
from sigdesk.roles import may_manage
from sigdesk.crypto import Cipher
from sigdesk.db import utcnow
from sigdesk.events.catalogue import TokenChanged, UserChanged
from sigdesk.events.outbox import record
from sigdesk.models import ApiToken, RecoveryCode, Role, User

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TOKEN_PREFIX = "sdk_"
RECOVERY_CODE_COUNT = 10
TOTP_ISSUER = "SigDesk"
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


class AccountError(ValueError):
    """A request about an account cannot be done; the message is safe to show the user."""


def _prehash(password: str) -> bytes:
    # bcrypt reads only 72 bytes; hashing first lets long passphrases count in full.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str, rounds: int = 12) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def check_password(password: str, password_hash: str) -> bool:
    return bcrypt.checkpw(_prehash(password), password_hash.encode("ascii"))


_DUMMY_HASH = hash_password(secrets.token_hex(8), rounds=4)


def validate_password(password: str, user_inputs: tuple[str, ...] = ()) -> None:
    problem = password_problem(password, user_inputs)
    if problem:
        raise AccountError(problem)


def normalise_email(email: str) -> str:
    cleaned = (email or "").strip().lower()
    if not EMAIL_RE.match(cleaned) or len(cleaned) > 254:
        raise AccountError("Enter a valid email address")
    return cleaned


def parse_role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        raise AccountError(f"Unknown role '{role}': use owner, admin or agent") from None


def user_count(session: Session) -> int:
    return session.scalar(select(func.count(User.id))) or 0


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


@dataclass(frozen=True)
class NewUser:
    """A user checked and hashed before the write: bcrypt is slow, and the write lock holds up every writer."""

    email: str
    name: str
    role: str
    password_hash: str


def new_user(email: str, name: str, role: str, password: str, rounds: int = 12) -> NewUser:
    email = normalise_email(email)
    role = parse_role(role)
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise AccountError("Enter a name of 1 to 120 characters")
    validate_password(password, (email, name))
    return NewUser(email, name, role, hash_password(password, rounds))


def insert_user(session: Session, new: NewUser) -> User:
    if find_user(session, new.email):
        raise AccountError(f"A user with the email {new.email} already exists")
    user = User(email=new.email, name=new.name, role=new.role, password_hash=new.password_hash)
    session.add(user)
    session.flush()
    return user


def create_user(session: Session, email: str, name: str, role: str, password: str, rounds: int = 12) -> User:
    return insert_user(session, new_user(email, name, role, password, rounds))


@dataclass
class LoginResult:
    user: User | None
    reason: str | None
    checked_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def authenticate(session: Session, email: str, password: str) -> LoginResult:
    """Check a password; an unknown email costs the same bcrypt work as a known one."""
    user = find_user(session, email or "")
    if user is None:
        check_password(password or "", _DUMMY_HASH)
        return LoginResult(None, "unknown_email")
    if not check_password(password or "", user.password_hash):
        return LoginResult(user, "wrong_password")
    if not user.is_active:
        return LoginResult(user, "deactivated")
    return LoginResult(user, None, user.password_hash)


def recheck_login(result: LoginResult) -> LoginResult:
    """authenticate() runs bcrypt before the write lock is taken; under it, with the user read again,
    a password changed or an account deactivated in the meantime refuses the login after all."""
    if not result.ok:
        return result
    if result.user.password_hash != result.checked_hash:
        return LoginResult(result.user, "wrong_password")
    if not result.user.is_active:
        return LoginResult(result.user, "deactivated")
    return result


@dataclass(frozen=True)
class PasswordChange:
    """A password change with its bcrypt work done, so storing it holds the write lock only briefly."""

    checked_hash: str
    new_hash: str


def prepare_password_change(user: User, current: str, new: str, rounds: int = 12) -> PasswordChange:
    checked = user.password_hash
    if not check_password(current, checked):
        raise AccountError("The current password is not correct")
    validate_password(new, (user.email, user.name))
    return PasswordChange(checked, hash_password(new, rounds))


def change_password(session: Session, user: User, change: PasswordChange) -> None:
    if user.password_hash != change.checked_hash:  # changed elsewhere since the current one was checked
        raise AccountError("The current password is not correct")
    user.password_hash = change.new_hash
    user.session_version += 1
    session.flush()


def signed_in(session: Session, user: User, ip: str | None, user_agent: str | None, method: str) -> None:
    """A sign-in that succeeded (password, second factor, or the first owner at setup): history and audit."""
    user.last_login_at = utcnow()
    throttle.cleared(session, user.email)
    session.flush()
    record_login(session, user.email, user, ip, user_agent, True, method)
    audit_record(session, "login", actor=user, ip=ip, detail={"method": method})


def sign_in_failed(
    session: Session, email: str, user: User | None, ip: str | None, user_agent: str | None, reason: str
) -> None:
    """A refused sign-in: history and audit (the attempt was counted when it was claimed, see throttle)."""
    record_login(session, email, user, ip, user_agent, False, reason)
    audit_record(session, "login.failed", target=email[:254], ip=ip, detail={"reason": reason})


def second_factor(
    session: Session, cipher: Cipher, user: User, code: str, ip: str | None, user_agent: str | None
) -> str | None:
    """Which second factor the code is (None: neither); the attempt is recorded either way."""
    if verify_totp(session, cipher, user, code):
        method = "totp"
    elif use_recovery_code(session, user, code):
        audit_record(
            session, "login.recovery_code_used", actor=user, ip=ip, detail={"remaining": remaining_recovery_codes(user)}
        )
        method = "recovery_code"
    else:
        sign_in_failed(session, user.email, user, ip, user_agent, "wrong_second_factor")
        return None
    signed_in(session, user, ip, user_agent, method)
    return method


# --- TOTP -------------------------------------------------------------------------------------


def begin_totp_enrolment(session: Session, cipher: Cipher, user: User) -> str:
    """Store a fresh secret (encrypted, not yet active) and return it for the QR code."""
    if user.totp_enabled:
        raise AccountError("Two-factor authentication is already on; reset it first")
    secret = pyotp.random_base32()
    user.totp_secret = cipher.encrypt_str(secret, context=f"totp:{user.id}")
    session.flush()
    return secret


def provisioning_uri(user: User, secret: str, issuer: str = TOTP_ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)


def pending_totp_secret(cipher: Cipher, user: User) -> str | None:
    if not user.totp_secret:
        return None
    return cipher.decrypt_str(user.totp_secret, context=f"totp:{user.id}")


def _matching_counter(secret: str, code: str) -> int | None:
    code = (code or "").strip().replace(" ", "")
    if not (code.isascii() and code.isdigit()) or len(code) != 6:  # "١٢٣٤٥٦" is isdigit() too
        return None
    totp = pyotp.TOTP(secret)
    now = utcnow()
    current = totp.timecode(now)
    for counter in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(counter), code):
            return counter
    return None


def confirm_totp_enrolment(session: Session, cipher: Cipher, user: User, code: str) -> list[str]:
    secret = pending_totp_secret(cipher, user)
    if secret is None or user.totp_enabled:
        raise AccountError("Start two-factor enrolment first")
    counter = _matching_counter(secret, code)
    if counter is None:
        raise AccountError("That code is not correct. Check your phone's clock and try the newest code")
    user.totp_enabled = True
    user.totp_last_counter = counter
    codes = regenerate_recovery_codes(session, user)
    session.flush()
    return codes


def verify_totp(session: Session, cipher: Cipher, user: User, code: str) -> bool:
    """Accept each code once: a code seen before (or older) is refused as a replay."""
    if not user.totp_enabled or not user.totp_secret:
        return False
    counter = _matching_counter(pending_totp_secret(cipher, user) or "", code)
    if counter is None or (user.totp_last_counter is not None and counter <= user.totp_last_counter):
        return False
    user.totp_last_counter = counter
    session.flush()
    return True


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().replace("-", "").encode("ascii", "ignore")).hexdigest()


def regenerate_recovery_codes(session: Session, user: User) -> list[str]:
    for old in list(user.recovery_codes):
        session.delete(old)
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5).upper()
        codes.append(f"{raw[:5]}-{raw[5:]}")
        user.recovery_codes.append(RecoveryCode(code_hash=_hash_code(raw)))
    session.flush()
    return codes


def use_recovery_code(session: Session, user: User, code: str) -> bool:
    wanted = _hash_code(code or "")
    for stored in user.recovery_codes:
        if stored.used_at is None and hmac.compare_digest(stored.code_hash, wanted):
            stored.used_at = utcnow()
            session.flush()
            return True
    return False


def remaining_recovery_codes(user: User) -> int:
    return sum(1 for code in user.recovery_codes if code.used_at is None)


def reset_totp(session: Session, user: User) -> None:
    user.totp_secret = None
    user.totp_enabled = False
    user.totp_last_counter = None
    for code in list(user.recovery_codes):
        session.delete(code)
    user.session_version += 1
    session.flush()


# --- API tokens -------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(session: Session, user: User, name: str = "API token") -> str:
    """Return the token once; only its hash is kept."""
    if not user.is_active:
        raise AccountError("Deactivated users cannot have API tokens")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name[:120], token_hash=_token_hash(token), prefix=token[:12]))
    session.flush()
    return token


def token_for(session: Session, token: str) -> ApiToken | None:
    """The live token row for a presented token; reads only, so any request may call it."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None or not row.user.is_active:
        return None
    return row


def user_for_token(session: Session, token: str) -> User | None:
    row = token_for(session, token)
    return row.user if row else None


def touch_token(session: Session, token_id: int, every: timedelta = TOKEN_TOUCH_INTERVAL) -> None:
    """Note when a token was last used, at most once a minute so API reads stay reads."""
    now = utcnow()
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id)
        .where((ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at < now - every))
        .values(last_used_at=now)
    )


# --- Team management --------------------------------------------------------------------------
# The commands below are what the team page, the account page, first-run setup and the CLI call: each
# checks the actor's rights (a person's; the CLI and SigDesk itself act as the owner of the machine),
# writes, audits and records its event. The caller commits.


def _owner_count(session: Session) -> int:
    return (
        session.scalar(select(func.count(User.id)).where(User.role == Role.OWNER.value, User.is_active.is_(True))) or 0
    )


def _guard(actor: Actor, target: User, new_role: str | None = None) -> None:
    if actor.user is not None and not may_manage(actor.user.role, target.role, new_role):
        raise AccountError("You are not allowed to change this user")


def _may_add(actor: User | None, role: str) -> None:
    if actor is not None and not may_manage(actor.role, Role.AGENT.value, role):
        raise AccountError(f"You are not allowed to add a user with the role {role}")


def _user_changed(session: Session, actor: Actor, action: str, target: User, change: str, **detail) -> None:
    record_by(session, actor, action, target.email, detail or None)
    record(session, UserChanged(target.id, change))


def new_team_member(actor: User | None, email: str, name: str, role: str, password: str, rounds: int = 12) -> NewUser:
    _may_add(actor, parse_role(role))
    return new_user(email, name, role, password, rounds)


def add_user(session: Session, actor: Actor, new: NewUser) -> User:
    """Checks the actor again: their role may have changed while the password was hashed."""
    _may_add(actor.user, new.role)
    if new.role != Role.OWNER.value and user_count(session) == 0:
        raise AccountError(
            f"The first user must be an owner (not {new.role}): only an owner can set SigDesk up and add the team"
        )
    user = insert_user(session, new)
    _user_changed(session, actor, "team.user_added", user, "created", role=user.role)
    return user


def change_role(session: Session, actor: Actor, target: User, new_role: str) -> str:
    new_role = parse_role(new_role)
    _guard(actor, target, new_role)
    old = target.role
    if old == Role.OWNER.value and new_role != old and _owner_count(session) <= 1:
        raise AccountError("SigDesk needs at least one active owner")
    target.role = new_role
    target.session_version += 1
    session.flush()
    _user_changed(session, actor, "team.role_changed", target, "role", to=new_role, **{"from": old})
    return old


def set_active(session: Session, actor: Actor, target: User, active: bool) -> None:
    _guard(actor, target)
    if actor.user is not None and target.id == actor.user.id and not active:
        raise AccountError("You cannot deactivate yourself")
    if not active and target.role == Role.OWNER.value and _owner_count(session) <= 1:
        raise AccountError("SigDesk needs at least one active owner")
    target.is_active = active
    target.session_version += 1
    session.flush()
    if not active:
        revoke_all_tokens(session, actor, target, "deactivated")
    _user_changed(
        session,
        actor,
        "team.user_activated" if active else "team.user_deactivated",
        target,
        "activated" if active else "deactivated",
    )


def reset_two_factor(session: Session, actor: Actor, target: User) -> None:
    """An owner or admin turns off someone's two-factor (a lost phone); they enrol again at next sign-in."""
    _guard(actor, target)
    reset_totp(session, target)
    _user_changed(session, actor, "team.2fa_reset", target, "two_factor")


def enable_two_factor(session: Session, actor: Actor, cipher: Cipher, user: User, code: str) -> list[str]:
    """Confirm the enrolment with a first code; returns the recovery codes (shown once)."""
    codes = confirm_totp_enrolment(session, cipher, user, code)
    _user_changed(session, actor, "2fa.enabled", user, "two_factor")
    return codes


def new_recovery_codes(session: Session, actor: Actor, user: User) -> list[str]:
    if not user.totp_enabled:
        raise AccountError("Turn on two-factor authentication first")
    codes = regenerate_recovery_codes(session, user)
    _user_changed(session, actor, "2fa.recovery_codes_regenerated", user, "two_factor")
    return codes


def set_password(session: Session, actor: Actor, user: User, change: PasswordChange) -> int:
    """Store a prepared password change; every session and API token of the user ends (a leaked
    password may have been used to make a token). Returns how many tokens were revoked."""
    change_password(session, user, change)
    revoked = revoke_all_tokens(session, actor, user, "password_changed")
    _user_changed(session, actor, "password.changed", user, "password")
    return revoked


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name, User.id)))


def active_users(session: Session) -> list[User]:
    """The team as the pickers offer it (assignee, owner): who can still sign in, by name."""
    return list(session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.name)))


def list_api_tokens(session: Session, user: User | None = None) -> list[ApiToken]:
    """Every API token, or one user's, oldest first: rows hold only a hash, so listing shows no secret."""
    query = select(ApiToken).order_by(ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query))


def issue_api_token(session: Session, actor: Actor, user: User, name: str = "API token") -> str:
    """A new token for `user`, returned once (only its hash is kept)."""
    value = create_api_token(session, user, name)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(value)))
    record_by(session, actor, "api_token.created", row.name, {"api_token_id": row.id, "user": user.email})
    record(session, TokenChanged(row.id, user.id, "created"))
    return value


def revoke_token(session: Session, actor: Actor, token: ApiToken, reason: str = "requested") -> None:
    """Revoke one API token: the one path every revocation takes, so each is audited and announced alike.
    `reason`: "requested" (its owner or an admin asked), "deactivated", "password_changed"."""
    if token.revoked_at is not None:
        return
    revoke_api_token(session, token)
    record_by(
        session,
        actor,
        "api_token.revoked",
        token.name,
        {"api_token_id": token.id, "user": token.user.email, "reason": reason},
    )
    record(session, TokenChanged(token.id, token.user_id, "revoked"))


def reset_password(session: Session, actor: Actor, user: User, password: str, rounds: int = 12) -> int:
    """Set a forgotten password from the machine itself (the CLI): no current password is asked for.
    Returns how many API tokens were revoked."""
    validate_password(password, (user.email, user.name))
    return set_password(session, actor, user, PasswordChange(user.password_hash, hash_password(password, rounds)))


def revoke_all_tokens(session: Session, actor: Actor, user: User, reason: str) -> int:
    """Revoke every live API token of a user (deactivation, password change); returns how many."""
    live = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))).all()
    for token in live:
        revoke_token(session, actor, token, reason)
    return len(live)


def revoke_api_token(session: Session, token: ApiToken) -> None:
    token.revoked_at = utcnow()
    session.flush()
