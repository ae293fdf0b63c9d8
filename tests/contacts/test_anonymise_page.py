"""The anonymise form (Admin → Exports, owners only): a refused confirmation or contact comes back to the
form with what was typed and the message next to the field it is about, and changes nothing."""

from __future__ import annotations

from html.parser import HTMLParser

from sqlalchemy import select

from sigdesk.models import Contact
from tests.backup.seed import seed
from tests.commanding import audit
from tests.conftest import csrf_from

FORM = "/admin/exports/contact/anonymise"


class Form(HTMLParser):
    """The anonymise form's fields, the texts of elements with an id, and the order they come in."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.fields: dict[str, list[dict[str, str]]] = {}
        self.texts: dict[str, str] = {}
        self.order: list[str] = []  # "input:<name>" and "id:<id>" in document order
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = {key: value or "" for key, value in attrs}
        if tag == "form" and values.get("id") == "anonymise-form":
            self.inside = True
        if not self.inside:
            return
        if tag in ("input", "select", "textarea") and "name" in values:
            self.fields.setdefault(values["name"], []).append(values)
            self.order.append(f"input:{values['name']}")
        if "id" in values:
            self.order.append(f"id:{values['id']}")
            self.texts[values["id"]] = ""
            if tag not in ("input", "br", "img"):
                self._open.append(values["id"])

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False

    def handle_data(self, data):
        for element in self._open:
            self.texts[element] += data


def anonymise_form(html: str) -> Form:
    form = Form()
    form.feed(html)
    return form


def post(auth, **data: str):
    token = csrf_from(auth.client.get("/admin/exports/").get_data(as_text=True))
    return auth.client.post(FORM, data={"csrf_token": token, **data})


def first_contact(app) -> tuple[int, str]:
    with app.extensions["sigdesk"].database.session() as session:
        contact = session.scalars(select(Contact).order_by(Contact.id)).first()
        return contact.id, contact.wa_id


def test_a_wrong_confirmation_returns_to_the_form_with_what_was_typed_and_the_error_by_the_field(app, auth, owner):
    seed(app)
    contact_id, wa_id = first_contact(app)
    refused = post(auth, contact_id=str(contact_id), confirm="anonymize")
    assert refused.status_code == 400
    form = anonymise_form(refused.get_data(as_text=True))
    [confirm] = form.fields["confirm"]
    assert confirm["value"] == "anonymize" and confirm.get("aria-invalid") == "true"
    error = confirm["aria-describedby"]
    assert "Type ANONYMISE" in form.texts[error]
    # next to the field: the message follows the input it is about, before any other field or button
    after = form.order[form.order.index("input:confirm") + 1 :]
    assert after[0] == f"id:{error}"
    assert [choice["value"] for choice in form.fields["contact_id"] if "checked" in choice] == [str(contact_id)]
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(Contact, contact_id).wa_id == wa_id
    assert audit(app, "contact.anonymised") == []


def test_an_unknown_contact_returns_to_the_form_with_the_error_by_the_contact(app, auth, owner):
    refused = post(auth, contact_id="999", confirm="ANONYMISE")
    assert refused.status_code == 404
    form = anonymise_form(refused.get_data(as_text=True))
    assert [field["value"] for field in form.fields["confirm"]] == ["ANONYMISE"]
    described = [
        field.get("aria-describedby", "")
        for name in ("contact_query", "contact_id")
        for field in form.fields.get(name, [])
    ]
    assert any("no contact 999" in form.texts.get(element, "") for value in described for element in value.split())
