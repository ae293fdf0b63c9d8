"""The password policy: long enough, and not one an attacker would try early (zxcvbn's estimate).

One function for every place a password or a backup passphrase is chosen (first-run setup, the team
page, the account page, `sigdesk user create`, the backup settings and `sigdesk backup create`), so
they all refuse the same secrets with the same words. A backup holds data.key and the whole database:
its passphrase deserves no less than a password.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
# zxcvbn's 3: "safely unguessable", about 10^8 guesses or more; 0-2 are common, predictable or short.
MIN_SCORE = 3
# zxcvbn's own limit; the first 72 characters of a longer password are what it judges.
SCORED_LENGTH = 72
# zxcvbn keeps the user's words in a module-level dictionary during a check: one check at a time.
_zxcvbn_lock = threading.Lock()


def password_problem(password: str, user_inputs: Iterable[str] = (), what: str = "password") -> str | None:
    """Why `password` is refused, in words a person can act on (None: it is acceptable).

    `user_inputs` are the account's own words (email, name): a password built from them is easy to guess.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The {what} must be at least {MIN_PASSWORD_LENGTH} characters long"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The {what} must be at most {MAX_PASSWORD_LENGTH} characters long"
    from zxcvbn import zxcvbn  # its word lists take a moment to load: only when a password is chosen

    words = [word for given in user_inputs if given for word in _words(given)] + ["sigdesk"]
    with _zxcvbn_lock:
        result = zxcvbn(password[:SCORED_LENGTH], user_inputs=words)
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    advice = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
    if not any(advice):
        advice = ["Use a few uncommon words together, or a longer passphrase."]
    return f"This {what} is too easy to guess. " + " ".join(part for part in advice if part)


def _words(text: str) -> list[str]:
    """The whole input and its parts ("olive.baker@example.com" → olive, baker, example, ...)."""
    lowered = text.strip().lower()
    parts = [part for part in "".join(ch if ch.isalnum() else " " for ch in lowered).split() if len(part) > 2]
    return [lowered, *parts]
