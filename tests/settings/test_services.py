import pytest

from sigdesk.app import create_app
from sigdesk.crypto import DataKeyError
from sigdesk.settings import services as settings
from sigdesk.settings.specs import SPECS, SettingError, Spec


@pytest.fixture
def secret_spec(monkeypatch):
    """A secret setting of the kind later capabilities add (API keys, app secrets)."""
    spec = Spec("test.api_key", "Test API key", secret=True)
    monkeypatch.setitem(SPECS, spec.key, spec)
    return spec


def state(app):
    return app.extensions["sigdesk"]


@pytest.mark.database
def test_settings_are_typed(app):
    with state(app).database.session() as session:
        cipher = state(app).cipher
        assert settings.get(session, cipher, "security.require_2fa") is False
        settings.set_text(session, cipher, "security.require_2fa", "yes")
        assert settings.get(session, cipher, "security.require_2fa") is True


@pytest.mark.database
def test_bad_setting_values_are_refused_and_keep_the_old_value(app):
    with state(app).database.session() as session:
        cipher = state(app).cipher
        settings.set_text(session, cipher, "server.allowed_networks", "192.168.1.0/24")
        with pytest.raises(SettingError, match="not an IP address"):
            settings.set_text(session, cipher, "server.allowed_networks", "192.168.1.0/24, office-lan")
        with pytest.raises(SettingError, match="yes/no"):
            settings.set_text(session, cipher, "security.require_2fa", "maybe")
        with pytest.raises(SettingError, match="Unknown setting"):
            settings.get(session, cipher, "no.such.key")
        assert settings.get(session, cipher, "server.allowed_networks") == "192.168.1.0/24"


def test_secret_settings_are_not_in_the_database_file_in_plain_text(app, config, secret_spec):
    plain = "EAAG-very-secret-access-token-1234567890"
    with state(app).database.session() as session:
        settings.set_text(session, state(app).cipher, secret_spec.key, plain)
    state(app).database.dispose()
    raw = b"".join(path.read_bytes() for path in config.data_dir.glob("sigdesk.db*"))
    assert plain.encode() not in raw
    with state(app).database.session() as session:
        assert settings.get(session, state(app).cipher, secret_spec.key) == plain


@pytest.mark.database
def test_secret_settings_are_encrypted_in_the_database(app, secret_spec):
    from sigdesk.models import Setting

    plain = "whsec-0123456789abcdef"
    with state(app).database.session() as session:
        settings.set_text(session, state(app).cipher, secret_spec.key, plain)
    with state(app).database.session() as session:
        row = session.get(Setting, secret_spec.key)
        assert row.is_secret and plain not in row.value


def test_data_key_file_is_private(app, config):
    assert config.data_key_file.stat().st_mode & 0o077 == 0


def test_missing_data_key_is_an_error_naming_the_file_and_no_new_key_is_made(app, config, secret_spec):
    with state(app).database.session() as session:
        settings.set_text(session, state(app).cipher, secret_spec.key, "keep-me")
    state(app).database.dispose()
    saved = config.data_key_file.read_bytes()
    config.data_key_file.unlink()
    with pytest.raises(DataKeyError, match=str(config.data_key_file)):
        create_app(config)
    assert not config.data_key_file.exists()
    config.data_key_file.write_bytes(saved)
    again = create_app(config)
    with again.extensions["sigdesk"].database.session() as session:
        assert settings.get(session, again.extensions["sigdesk"].cipher, secret_spec.key) == "keep-me"
    again.extensions["sigdesk"].database.dispose()


def test_a_data_key_from_another_install_is_refused(app, config, tmp_path):
    from sigdesk.crypto import create_key

    state(app).database.dispose()
    config.data_key_file.unlink()
    create_key(config.data_key_file)
    with pytest.raises(DataKeyError, match="does not belong to this database"):
        create_app(config)
