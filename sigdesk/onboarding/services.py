"""First-run setup after the owner account exists: where the owner is, and the checks only it makes.

The settings themselves are stored through the one settings store and the existing services
(connect, relay, backup); this module adds the wizard's progress and its input rules.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.crypto import Cipher
from sigdesk.settings import services as settings
from sigdesk.settings.specs import ONBOARDING_STEPS, SettingError, check_backup_passphrase, parse_passphrase

STEP_KEY = "onboarding.step"
DONE = "done"
# The steps the owner walks through in the window; "done" is not one of them.
STEPS = tuple(step for step in ONBOARDING_STEPS if step != DONE)


class OnboardingError(ValueError):
    """Input the wizard cannot accept; the message says what to change."""


def step(session: Session, cipher: Cipher) -> str | None:
    """The step to resume at; None when the wizard was never started (installs older than it)."""
    return settings.get(session, cipher, STEP_KEY)


def is_finished(session: Session, cipher: Cipher) -> bool:
    return step(session, cipher) == DONE


def start(session: Session, cipher: Cipher) -> None:
    """Called right after the owner account is created."""
    if step(session, cipher) is None:
        settings.set_value(session, cipher, STEP_KEY, STEPS[0])


def next_step(current: str) -> str:
    index = STEPS.index(current)
    return STEPS[index + 1] if index + 1 < len(STEPS) else DONE


def advance(session: Session, cipher: Cipher, past: str) -> str:
    """Move on from a step (done or skipped); never moves backwards. Returns where to go next."""
    following = next_step(past)
    current = step(session, cipher) or STEPS[0]
    if current != DONE and ONBOARDING_STEPS.index(following) > ONBOARDING_STEPS.index(current):
        settings.set_value(session, cipher, STEP_KEY, following)
    return following


def finish(session: Session, actor: Actor, cipher: Cipher) -> None:
    """The wizard is done (finished or skipped); it is not shown again."""
    settings.set_value(session, cipher, STEP_KEY, DONE)
    record_by(session, actor, "onboarding.finished")


def check_passphrase(passphrase: str, repeated: str) -> str:
    """The backup passphrase, if both copies match and the settings store accepts it."""
    if passphrase != repeated:
        raise OnboardingError("The two backup passphrases do not match")
    try:
        return check_backup_passphrase(parse_passphrase(passphrase))
    except SettingError as exc:
        raise OnboardingError(str(exc)) from None


def check_backup_folder(text: str, may_create: Path | None = None) -> Path:
    """An existing folder SigDesk can write to (a USB drive or synced folder), as an absolute path.
    Only the folder SigDesk itself suggested (may_create) is made when missing; any other missing
    folder is more likely a typo or an unplugged drive."""
    cleaned = (text or "").strip()
    if not cleaned:
        raise OnboardingError("Choose a folder for the backups")
    folder = Path(cleaned).expanduser()
    if not folder.is_absolute():
        raise OnboardingError(f"Give the full path of the backup folder, like {Path.home() / 'SigDesk Backups'}")
    if may_create is not None and folder == may_create and not folder.exists():
        try:
            folder.mkdir(mode=0o700)
        except OSError as exc:
            raise OnboardingError(f"Cannot create the folder {folder}: {exc.strerror}") from exc
    if not folder.is_dir():
        raise OnboardingError(f"The folder {folder} does not exist (create it first, or plug in the drive)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OnboardingError(f"SigDesk cannot write to the folder {folder}")
    return folder


def suggested_backup_folder() -> Path:
    return Path.home() / "SigDesk Backups"
