"""Settings → Contact fields: admins add, edit and delete fields with CSRF-checked forms; a refused form
comes back with its message by the field at fault and what was typed; deleting asks first, saying how
many contacts have a value; agents may not open the page."""

from __future__ import annotations

import pytest

from sigdesk.custom_fields import services
from tests import factories
from tests.commanding import audit
from tests.conftest import csrf_from
from tests.custom_fields.helpers import field

pytestmark = pytest.mark.database

PAGE = "/admin/contact-fields"


def _post(client, path: str, data: dict, page: str = PAGE):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def _html(response) -> str:
    return response.get_data(as_text=True).replace("&#39;", "'")


def test_the_page_is_listed_in_settings_for_admins(auth, owner):
    page = auth.client.get(PAGE).get_data(as_text=True)
    assert 'data-setting="contact_fields"' in page and 'aria-current="page">Contact fields<' in page


def test_an_admin_adds_edits_and_deletes_a_field(app, auth, owner):
    added = _post(auth.client, PAGE, {"label": "Plan", "kind": "choice", "options": "Free\nPro\n", "required": "true"})
    assert added.status_code == 302
    page = _html(auth.client.get(PAGE))
    assert "Added the field Plan." in page and 'data-field="plan"' in page and "Single choice" in page
    with app.extensions["sigdesk"].database.session() as session:
        plan = services.find_field(session, "plan")
        assert services.options_of(plan) == ["Free", "Pro"] and plan.required
        customer = factories.contact(session)
        services.set_values(session, customer.id, {"plan": "Pro"})
        session.commit()
    edit = f"{PAGE}/{plan.id}"
    saved = _post(
        auth.client, edit, {"label": "Tier", "key": "plan", "kind": "choice", "options": "Free\nPro\nMax"}, edit
    )
    assert saved.status_code == 302
    confirm = _html(auth.client.get(f"{edit}/delete"))
    assert "Delete the field Tier?" in confirm and "1 contact(s) have a value" in confirm
    assert _post(auth.client, f"{edit}/delete", {}, f"{edit}/delete").status_code == 302
    assert 'data-field="plan"' not in auth.client.get(PAGE).get_data(as_text=True)
    assert [entry.channel for entry in audit(app, "contact_field.delete")] == ["web"]
    assert audit(app, "contact_field.delete")[0].detail["values"] == 1


@pytest.mark.parametrize(
    ("data", "message", "error_id"),
    [
        ({"label": "", "kind": "text"}, "A field's label is 1 to 64 characters", "cf-label-error"),
        ({"label": "Code", "kind": "text", "pattern": "(a+)+"}, "repeats a repetition", "cf-pattern-error"),
        ({"label": "Code", "kind": "text", "pattern": "[a-"}, "not a valid regular expression", "cf-pattern-error"),
        ({"label": "Plan", "kind": "choice", "options": ""}, "Give the choices", "cf-options-error"),
        ({"label": "Budget", "kind": "currency", "currency": "euro"}, "three-letter ISO code", "cf-currency-error"),
        ({"label": "Email", "kind": "text", "key": "email"}, "standard contact field", "cf-key-error"),
    ],
)
def test_a_refused_form_comes_back_with_what_was_typed(auth, owner, data, message, error_id):
    refused = _post(auth.client, PAGE, data)
    page = _html(refused)
    assert refused.status_code == 400
    assert f'id="{error_id}"' in page and message in page
    if data["label"]:
        assert f'value="{data["label"]}"' in page


def test_the_edit_form_keeps_the_key_of_a_field_in_use(app, auth, owner):
    with app.extensions["sigdesk"].database.session() as session:
        seats = field(session, "Seats", "number")
        services.set_values(session, factories.contact(session).id, {"seats": 3})
        session.commit()
    edit = f"{PAGE}/{seats.id}"
    refused = _post(auth.client, edit, {"label": "Seats", "key": "seats", "kind": "text"}, edit)
    assert refused.status_code == 409 and 'id="cf-kind-error"' in _html(refused)


def test_forms_without_the_csrf_token_are_refused(auth, owner):
    assert auth.client.post(PAGE, data={"label": "Plan", "kind": "text"}).status_code == 400


def test_agents_may_not_open_the_page(auth, owner):
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert auth.client.get(PAGE).status_code == 403
    assert auth.client.get(f"{PAGE}/1/delete").status_code == 403
