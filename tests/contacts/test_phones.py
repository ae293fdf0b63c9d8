"""Phone numbers typed in any common format become Meta's wa_id; what cannot be a number is refused naming
the field, and the default country comes from the setting or, on a new install, the machine's locale."""

from __future__ import annotations

import pytest

from sigdesk.contacts.phones import normalise, pretty
from sigdesk.errors import UserError
from sigdesk.settings.specs import SettingError, machine_country, parse_country


@pytest.mark.parametrize(
    "typed, country, wa_id",
    [
        ("+49 170 1234567", None, "491701234567"),
        ("+49 (0)170 1234567", None, "491701234567"),
        ("0049 170 1234567", None, "491701234567"),
        ("491701234567", None, "491701234567"),
        ("0170 1234567", "DE", "491701234567"),
        ("0170/123 45 67", "DE", "491701234567"),
        ("491701234567", "DE", "491701234567"),
        ("(202) 555-0123", "US", "12025550123"),
        ("202.555.0123", "US", "12025550123"),
        ("+55 11 98765-4321", "DE", "5511987654321"),
        ("11 98765-4321", "BR", "5511987654321"),
    ],
)
def test_common_formats_become_e164_digits(typed, country, wa_id):
    assert normalise(typed, country) == wa_id


@pytest.mark.parametrize(
    "typed, country, says",
    [
        ("", "DE", "Give a phone number"),
        ("   ", None, "Give a phone number"),
        ("+1 202 555", None, "not a valid phone number"),
        ("0170 1234567", None, "contacts.default_country"),
        ("call me", "DE", "not a valid phone number"),
        ("+49 170 1234567 ext. 12345678901234567890123456789012345678901234567890", None, "at most"),
    ],
)
def test_what_cannot_be_a_number_is_refused_naming_the_field(typed, country, says):
    with pytest.raises(UserError) as refused:
        normalise(typed, country, field="phone")
    assert refused.value.field == "phone"
    assert says in refused.value.message


def test_a_wa_id_reads_as_people_write_it():
    assert pretty("491701234567") == "+49 170 1234567"
    assert pretty("not digits") == "not digits"
    assert pretty(None) is None


def test_the_default_country_setting_takes_an_iso_code_or_nothing():
    assert parse_country(" de ") == "DE"
    assert parse_country("") == ""
    with pytest.raises(SettingError):
        parse_country("Germany")


@pytest.mark.parametrize(
    "lang, country", [("de_DE.UTF-8", "DE"), ("pt_BR", "BR"), ("C.UTF-8", ""), ("POSIX", ""), ("xx_ZZ", "")]
)
def test_a_new_install_takes_the_country_from_the_machine_locale(monkeypatch, lang, country):
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        monkeypatch.setenv(name, lang)
    monkeypatch.setattr("locale.getlocale", lambda: (None, None))
    assert machine_country() == country
