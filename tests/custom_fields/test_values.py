"""A custom field's value, read from JSON (the API) and from a spreadsheet cell (imports), checked against its
definition and stored in its kind's column; a bad value is refused naming `fields.<key>`."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from sigdesk.custom_fields.values import parse, to_json
from sigdesk.errors import UserError
from tests.custom_fields.helpers import definition

COLOURS = ["Red", "Green", "Blue"]


@pytest.mark.parametrize(
    ("kind", "parts", "raw", "stored", "shown"),
    [
        ("text", {}, "  Gold plan ", ("Gold plan", None, None), "Gold plan"),
        ("text", {"pattern": r"[A-Z]{2}-\d{4}"}, "AB-1234", ("AB-1234", None, None), "AB-1234"),
        (
            "link",
            {},
            "https://example.com/a?b=1",
            ("https://example.com/a?b=1", None, None),
            "https://example.com/a?b=1",
        ),
        ("number", {}, 42, (None, 42.0, None), 42),
        ("number", {}, -1.25, (None, -1.25, None), -1.25),
        ("currency", {}, 1234.5, (None, 1234.5, None), 1234.5),
        ("currency", {}, 10, (None, 10.0, None), 10.0),
        ("boolean", {}, True, (None, 1.0, None), True),
        ("boolean", {}, False, (None, 0.0, None), False),
        ("date", {}, "2026-02-28", (None, None, date(2026, 2, 28)), "2026-02-28"),
        ("choice", {"options": COLOURS}, "green", ("Green", None, None), "Green"),
        ("choices", {"options": COLOURS}, ["blue", "Red", "Blue"], ('["Red", "Blue"]', None, None), ["Red", "Blue"]),
    ],
)
def test_each_kind_takes_its_json_value_and_shows_it_back(kind, parts, raw, stored, shown):
    field = definition(kind, **parts)
    assert parse(field, raw) == stored
    assert to_json(field, *stored) == shown


@pytest.mark.parametrize(
    ("kind", "parts", "raw"),
    [
        ("text", {}, 12),
        ("text", {}, "two\nlines"),
        ("text", {}, "x" * 501),
        ("text", {"pattern": r"[A-Z]{2}-\d{4}"}, "ab-1234"),
        ("text", {"pattern": r"\d+"}, "12a"),
        ("link", {}, "example.com"),
        ("link", {}, "javascript:alert(1)"),
        ("link", {"pattern": r"https://shop\.example/.*"}, "https://other.example/"),
        ("number", {}, "12"),
        ("number", {}, True),
        ("number", {}, 1e300),
        ("currency", {}, 12.345),
        ("boolean", {}, "yes"),
        ("boolean", {}, 1),
        ("date", {}, "28/02/2026"),
        ("date", {}, "2026-02-30"),
        ("date", {}, 20260228),
        ("choice", {"options": COLOURS}, "Purple"),
        ("choice", {"options": COLOURS}, ["Red"]),
        ("choices", {"options": COLOURS}, "Red"),
        ("choices", {"options": COLOURS}, ["Red", "Purple"]),
        ("choices", {"options": COLOURS}, [1]),
    ],
)
def test_a_bad_json_value_is_refused_naming_the_field(kind, parts, raw):
    with pytest.raises(UserError) as refused:
        parse(definition(kind, key="the_key", **parts), raw)
    assert refused.value.field == "fields.the_key"
    assert refused.value.status == 400


@pytest.mark.parametrize("kind", ["text", "number", "date", "boolean", "choice", "choices", "link", "currency"])
@pytest.mark.parametrize("empty", [None, "", "   ", []])
def test_an_empty_value_is_no_value(kind, empty):
    assert parse(definition(kind, options=COLOURS), empty) == (None, None, None)


@pytest.mark.parametrize(
    ("cell", "number"),
    [
        ("1234.50", 1234.5),
        ("1,234.50", 1234.5),
        ("1.234,50", 1234.5),
        ("1 234,50", 1234.5),
        ("12,5", 12.5),
        ("1,234,567", 1234567),
        ("1.234.567", 1234567),
        ("-3", -3),
        ("€ 1.234,50", 1234.5),
        ("1,234.50 EUR", 1234.5),
        (17, 17),
        (2.5, 2.5),
    ],
)
def test_numbers_from_a_spreadsheet_follow_one_rule(cell, number):
    assert parse(definition("currency"), cell, from_text=True)[1] == number


@pytest.mark.parametrize("cell", ["1,234", "12a", "1.2.3,4,5", "--1", "€", "1,2,3.4.5"])
def test_unclear_numbers_from_a_spreadsheet_are_refused(cell):
    with pytest.raises(UserError) as refused:
        parse(definition("number"), cell, from_text=True)
    assert refused.value.field == "fields.number"


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("yes", True),
        ("No", False),
        ("TRUE", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("ja", True),
        ("Nein", False),
        ("sí", True),
        ("oui", True),
        ("non", False),
        (True, True),
        (0, False),
    ],
)
def test_yes_and_no_from_a_spreadsheet_in_several_languages(cell, value):
    field = definition("boolean")
    assert to_json(field, *parse(field, cell, from_text=True)) is value


def test_an_unclear_yes_or_no_is_refused():
    with pytest.raises(UserError):
        parse(definition("boolean"), "maybe", from_text=True)


@pytest.mark.parametrize(
    "cell",
    [
        "2026-03-04",
        "04/03/2026",
        "4.3.2026",
        "2026/03/04",
        date(2026, 3, 4),
        datetime(2026, 3, 4, 0, 0),
        "2026-03-04 00:00:00",
    ],
)
def test_dates_from_a_spreadsheet_in_the_common_forms(cell):
    assert parse(definition("date"), cell, from_text=True)[2] == date(2026, 3, 4)


@pytest.mark.parametrize("cell", ["31/02/2026", "March 4", "2026-13-01", "04-03-2026"])
def test_unreadable_dates_are_refused(cell):
    with pytest.raises(UserError):
        parse(definition("date"), cell, from_text=True)


@pytest.mark.parametrize("cell", ["red; blue", "Red, Blue", "blue,red", "Blue;;red"])
def test_multiple_choices_from_a_spreadsheet_cell(cell):
    field = definition("choices", options=COLOURS)
    assert to_json(field, *parse(field, cell, from_text=True)) == ["Red", "Blue"]


def test_a_link_typed_without_its_scheme_in_a_spreadsheet_gets_https():
    assert parse(definition("link"), "www.example.com", from_text=True)[0] == "https://www.example.com"


def test_a_whole_number_shows_as_an_int_and_an_amount_always_as_a_float():
    assert to_json(definition("number"), None, 3.0, None) == 3 and isinstance(
        to_json(definition("number"), None, 3.0, None), int
    )
    assert isinstance(to_json(definition("currency"), None, 3.0, None), float)
