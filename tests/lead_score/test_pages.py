"""Settings → Lead score: admins add, change and delete rules with CSRF-checked forms and see how many
contacts each rule matches; a refused form comes back with its message; agents cannot open it; the
inbox panel shows a contact's score and why."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sigdesk.lead_score.services import list_rules
from sigdesk.models import Contact
from tests import factories
from tests.conftest import csrf_from
from tests.lead_score.helpers import feed, rule

pytestmark = pytest.mark.database

PAGE = "/admin/lead-score"


def _post(client, path: str, data: dict):
    token = csrf_from(client.get(PAGE).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def test_an_admin_adds_changes_and_deletes_rules_and_sees_how_many_contacts_match(app, auth, owner):
    with app.extensions["sigdesk"].database.session() as session:
        factories.contact(session, marketing_consent="opted_in")
        factories.contact(session)
        session.commit()
    page = auth.client.get(PAGE).get_data(as_text=True)
    assert 'data-setting="lead_score"' in page and "No rules yet" in page
    assert _post(auth.client, PAGE, {"kind": "opted_in", "points": "10", "label": ""}).status_code == 302
    assert _post(auth.client, PAGE, {"kind": "has_ordered", "points": "-5", "label": "Ordered"}).status_code == 302
    page = auth.client.get(PAGE).get_data(as_text=True)
    assert "Added the rule Ordered." in page and "1 contact(s), +10 each" in page and "Counts once orders exist" in page
    with app.extensions["sigdesk"].database.session() as session:
        first, second = (item.id for item in list_rules(session))
    done = _post(auth.client, f"{PAGE}/{second}", {"points": "15", "label": "Bought", "position": "1"})
    assert done.status_code == 302
    with app.extensions["sigdesk"].database.session() as session:
        assert [(item.label, item.points) for item in list_rules(session)] == [("Bought", 15), ("Opted in", 10)]
    assert _post(auth.client, f"{PAGE}/{first}/delete", {}).status_code == 302
    with app.extensions["sigdesk"].database.session() as session:
        assert [item.label for item in list_rules(session)] == ["Bought"]


def test_a_refused_rule_form_comes_back_with_its_message_and_what_was_typed(app, auth, owner):
    refused = _post(auth.client, PAGE, {"kind": "has_tag", "argument": "Nope", "points": "10", "label": "Mine"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "There is no tag" in page and 'value="Mine"' in page
    refused = _post(auth.client, PAGE, {"kind": "opted_in", "points": "ten"})
    assert refused.status_code == 400 and "must be a whole number" in refused.get_data(as_text=True)
    assert auth.client.post(PAGE, data={"kind": "opted_in", "points": "1"}).status_code == 400  # no CSRF token
    with app.extensions["sigdesk"].database.session() as session:
        assert list_rules(session) == []


def test_agents_may_not_open_the_page(app, auth, owner):
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert auth.client.get(PAGE).status_code == 403
    assert 'data-setting="lead_score"' not in auth.client.get("/account/").get_data(as_text=True)


def test_the_inbox_panel_shows_the_score_and_why(app, auth, owner):
    feed(app)
    rule(app, "opted_in", 10, label="Opted in")
    with app.extensions["sigdesk"].database.session() as session:
        conversation = factories.conversation(session, factories.contact(session, marketing_consent="opted_in"))
        session.commit()
        conversation_id, contact_id = conversation.id, conversation.contact_id
    feed(app)
    with app.extensions["sigdesk"].database.session() as session:
        assert session.scalar(select(Contact.lead_score).where(Contact.id == contact_id)) == 10
    panel = auth.client.get(f"/inbox/c/{conversation_id}/panel").get_data(as_text=True)
    assert 'data-lead-score="10"' in panel and "Opted in +10" in panel
