"""A new backup passphrase meets the password policy; a stored one from before still reads."""

from __future__ import annotations

import pytest

from sigdesk.passwords import password_problem
from sigdesk.models import Setting
from sigdesk.settings import services as settings
from sigdesk.settings.specs import SettingError, check_backup_passphrase

SAMPLES = ["12345678", "1234567890", "password123", "qwertyuiop123", "correct horse battery", "sofa lantern quietly"]


@pytest.mark.parametrize("candidate", SAMPLES)
def test_the_backup_passphrase_policy_is_the_password_policy(candidate):
    try:
        check_backup_passphrase(candidate)
        refused = False
    except SettingError as error:
        refused = True
        assert "backup passphrase" in str(error)
    assert refused == (password_problem(candidate, ["backup"]) is not None)


def test_settings_set_refuses_a_weak_passphrase_but_one_stored_before_still_reads(app):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        with pytest.raises(SettingError, match="backup passphrase"):
            settings.set_text(session, state.cipher, "backup.passphrase", "12345678")
        session.add(
            Setting(
                key="backup.passphrase",
                value=state.cipher.encrypt_str("12345678", context="backup.passphrase"),
                is_secret=True,
            )
        )
        session.flush()
        assert settings.get(session, state.cipher, "backup.passphrase") == "12345678"
