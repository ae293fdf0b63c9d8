"""The wizard's Backups step holds the backup passphrase to the password policy (the file holds data.key)."""

from __future__ import annotations

from sigdesk.settings import services as settings


def test_a_guessable_backup_passphrase_is_refused_naming_the_field(app, auth, owner, tmp_path):
    response = auth.post(
        "/welcome/backup",
        {
            "passphrase": "12345678",
            "passphrase_confirm": "12345678",
            "backup.folder": str(tmp_path),
            "backup.schedule": "daily",
        },
        form_page="/welcome/backup",
    )
    assert response.status_code == 400
    assert "The backup passphrase must be at least 10 characters long" in response.get_data(as_text=True)
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        assert settings.get(session, state.cipher, "backup.passphrase") is None
        assert settings.get(session, state.cipher, "backup.schedule") == "off"


def test_the_step_asks_for_a_passphrase_as_long_as_the_policy_wants(auth, owner):
    page = auth.client.get("/welcome/backup").get_data(as_text=True)
    assert 'minlength="10"' in page and "at least 10 characters" in page
