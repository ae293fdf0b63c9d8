"""A broadcast's variables are text with contact values in braces, filled per recipient: a value missing
without a fallback is a reason to skip that recipient, never a message with a hole in it."""

from __future__ import annotations

import pytest

from sigdesk.actor import Actor
from sigdesk.broadcasts import variables
from sigdesk.broadcasts.variables import ContactFacts, Piece
from sigdesk.custom_fields import commands as custom_fields
from sigdesk.errors import UserError
from tests import factories


def test_an_expression_is_text_and_contact_values_with_optional_fallbacks():
    assert variables.parse("Hi {contact.first_name|there}, your {contact.fields.plan} plan") == [
        Piece(text="Hi "),
        Piece(name="first_name", fallback="there"),
        Piece(text=", your "),
        Piece(name="fields.plan"),
        Piece(text=" plan"),
    ]
    assert variables.parse("") == []


@pytest.mark.parametrize("expression", ["{contact.age}", "{name}", "Hi {contact.name", "Hi }", "{contact.fields.}"])
def test_an_unknown_name_or_a_stray_brace_is_refused_naming_the_placeholder(expression):
    with pytest.raises(UserError) as refused:
        variables.check({"body": {"1": expression}})
    assert refused.value.field == "template.variables.body.1"


def test_variables_given_for_the_body_alone_are_the_bodys():
    assert variables.normalise({"1": "{contact.name}"}) == {"body": {"1": "{contact.name}"}}
    assert variables.normalise({"header": {"1": "x"}, "2": "y"}) == {"header": {"1": "x"}, "body": {"2": "y"}}


def test_fill_uses_the_contacts_values_and_the_fallback_when_one_is_missing():
    ana = ContactFacts(contact_id=1, name="Ana María López", city="Berlin", fields={"plan": "Gold", "vip": True})
    nobody = ContactFacts(contact_id=2)
    given = {
        "body": {"1": "{contact.first_name|there}", "2": "{contact.city|your city}", "3": "{contact.fields.vip|no}"}
    }
    assert variables.fill(given, ana) == {"body": {"1": "Ana", "2": "Berlin", "3": "yes"}}
    assert variables.fill(given, nobody) == {"body": {"1": "there", "2": "your city", "3": "no"}}


def test_a_value_missing_without_a_fallback_is_the_reason_to_skip():
    assert variables.fill({"1": "{contact.fields.city}"}, ContactFacts(contact_id=1)) == (
        "no value for contact.fields.city"
    )
    assert (
        variables.fill({"1": "{contact.name}"}, ContactFacts(contact_id=1, name="   ")) == "no value for contact.name"
    )


def test_values_whatsapp_would_refuse_are_made_one_line():
    facts = ContactFacts(contact_id=1, company="Acme\n\tTrading      Ltd", fields={"tags": ["a", "b"], "n": 3.0})
    assert variables.fill({"1": "{contact.company}", "2": "{contact.fields.tags} {contact.fields.n}"}, facts) == {
        "body": {"1": "Acme Trading Ltd", "2": "a, b 3"}
    }


def test_facts_are_read_for_a_whole_batch_with_custom_fields(app):
    with app.extensions["sigdesk"].database.session() as session:
        custom_fields.define_field(session, Actor.system("cli"), "Plan", "text", key="plan")
        from sigdesk.custom_fields.services import set_values

        ana = factories.contact(session, wa_id="491701234501", name="Ana", email="ana@example.com", city="Köln")
        ben = factories.contact(session, wa_id="491701234502", display_name="Ben Berg")
        set_values(session, ana.id, {"plan": "Gold"})
        facts = variables.facts_for(session, [ana.id, ben.id, ana.id])
    assert facts[ana.id].name == "Ana" and facts[ana.id].city == "Köln" and facts[ana.id].fields == {"plan": "Gold"}
    assert facts[ana.id].phone == "+491701234501" and facts[ana.id].email == "ana@example.com"
    assert facts[ben.id].first_name == "Ben" and facts[ben.id].fields == {}


@pytest.mark.parametrize(
    "given, always",
    [
        ({"1": "{contact.first_name|there}"}, True),
        ({"1": "Dear {contact.name|customer}, from {contact.fields.city|our shop}"}, True),
        ({"1": "Spring sale"}, True),
        ({"body": {"1": "{contact.name|friend}"}, "header": {"1": "News"}}, True),
        ({"1": "{contact.name}"}, False),
        ({"1": "{contact.name|friend} in {contact.city}"}, False),
        ({"1": "   "}, False),
        ({"1": "{contact.name|}"}, False),
        ({"1": 7}, False),
    ],
)
def test_variables_that_fill_for_anyone_are_known_without_reading_a_contact(given, always):
    """Freezing an audience skips reading everyone's values when no one could be skipped for a missing one."""
    assert variables.always_filled(given) is always
    if always:
        assert isinstance(variables.fill(given, ContactFacts(contact_id=1)), dict)
