"""Column mappings: suggested from the header's names, checked before anything is imported."""

from __future__ import annotations

import pytest

from sigdesk.errors import UserError
from sigdesk.imports import mapping


def test_fields_are_suggested_from_header_names_in_several_languages():
    headers = ["Nombre", "Teléfono", "E-Mail", "Firma", "Etiquetas", "Lifecycle stage", "Whatever", "WhatsApp"]
    assert [field for _i, _h, field in mapping.suggest(headers)] == [
        "name",
        "phone",
        "email",
        "company",
        "tags",
        "stage",
        "ignore",
        "ignore",
    ]
    assert mapping.suggest(["Mobile"])[0][2] == mapping.suggest(["Telefon"])[0][2] == "phone"


def test_custom_fields_are_suggested_by_their_key():
    assert mapping.suggest(["Birthday"], ["birthday"])[0][2] == "field:birthday"


def test_two_columns_on_one_field_are_refused_naming_both():
    with pytest.raises(UserError) as refused:
        mapping.build(["Phone", "Mobile"], {"Phone": "phone", "Mobile": "phone"})
    assert "'Phone' and 'Mobile'" in str(refused.value)
    assert refused.value.field == "mapping"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"Nope": "phone"}, "no column 'Nope'"),
        ({"Phone": "telephone"}, "not a field"),
        ({"Phone": "field:missing"}, "no custom field"),
        ({"Phone": "name"}, "Map a column to phone"),
    ],
)
def test_bad_mappings_are_refused(given, message):
    with pytest.raises(UserError) as refused:
        mapping.build(["Phone", "Name"], given)
    assert message in str(refused.value)


def test_cli_pairs_adjust_the_suggestion():
    base = mapping.suggest(["Phone", "Mobile", "Name"])
    built = mapping.build(["Phone", "Mobile", "Name"], mapping.parse_pairs(["Phone=ignore", "Mobile=phone"]), [], base)
    assert [field for _i, _h, field in built] == ["ignore", "phone", "name"]
    with pytest.raises(UserError):
        mapping.parse_pairs(["Phone"])
