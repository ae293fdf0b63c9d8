"""The Reorders section: agents see who is due to reorder (filtered by horizon, product, probability and risk,
with consent and a way into the thread with a suggested message), the accuracy of past predictions or a plain
"not enough history", and a refresh's progress; bad filters are a 400 naming the field."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from sigdesk.contacts.services import name_of
from sigdesk.models import Message, PredictionRefresh
from sigdesk.predictions import services
from tests import factories
from tests.commanding import audit
from tests.conftest import csrf_from
from tests.predictions.test_services import TODAY, at, session_of, shop

pytestmark = pytest.mark.database


def signed_in_agent(auth, owner):
    person = auth.create_user("agent")
    auth.logout()
    auth.login(person)
    return person


def listed(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr data-contact="(\d+)"', html)]


def test_an_agent_sees_who_is_due_most_likely_first_with_consent_and_a_way_into_the_thread(
    app, auth, owner, monkeypatch
):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        people = shop(session, TODAY)
        first = people["regulars"][0]
        first.marketing_consent = "opted_in"
        conversation = factories.conversation(session, first)
        late = factories.contact(session, name="Late Larry")
        for k in range(8):
            factories.order(session, late, TODAY - timedelta(days=60 + 14 * k), [(people["water"], 1, 500)])
        session.commit()
        conversation_id, first_id, late_id, once_id = conversation.id, first.id, late.id, people["once"].id
        regular_ids = {who.id for who in people["regulars"]}
        services.refresh_now(session, "cli")
    signed_in_agent(auth, owner)
    html = auth.client.get("/reorders/").get_data(as_text=True)
    assert 'data-nav="reorders"' in html or "Reorders" in html
    shown = listed(html)
    assert set(shown) == regular_ids | {once_id, late_id}
    probabilities = [float(found) for found in re.findall(r'data-probability="([0-9.]+)"', html)]
    assert probabilities == sorted(probabilities, reverse=True)
    row = html[html.index(f'data-contact="{first_id}"') :]
    row = row[: row.index("</tr>")]
    assert 'data-consent="opted_in"' in row and f"/inbox/?c={conversation_id}" in row
    assert "would you like us to prepare your next order" in row and "Regular 0" in row
    assert "data-window-closed" in row
    larry = html[html.index(f'data-contact="{late_id}"') :]
    assert "data-at-risk" in larry[: larry.index("</tr>")]
    once = html[html.index(f'data-contact="{once_id}"') :]
    assert "not enough history" in once[: once.index("</tr>")]

    risky = auth.client.get("/reorders/?horizon=30&risk=1").get_data(as_text=True)
    assert listed(risky) == [late_id]
    bread = auth.client.get("/reorders/?horizon=90&product=BREAD").get_data(as_text=True)
    assert once_id in listed(bread) and late_id not in listed(bread)
    assert "your Bread" in bread
    likely = auth.client.get("/reorders/?horizon=7&min=99").get_data(as_text=True)
    assert set(listed(likely)) < set(shown)


def test_the_list_pages_on_without_repeating_anyone(app, auth, owner, monkeypatch):
    at(TODAY, monkeypatch)
    monkeypatch.setattr("sigdesk.predictions.views.PAGE", 3)
    with session_of(app) as session:
        shop(session, TODAY)
        services.refresh_now(session, "cli")
    seen: list[int] = []
    path = "/reorders/?horizon=30"
    while path:
        html = auth.client.get(path).get_data(as_text=True)
        seen += listed(html)
        more = re.search(r'id="due-more" href="([^"]+)"', html)
        path = more.group(1).replace("&amp;", "&") if more else ""
    assert len(seen) == len(set(seen)) == 7


def test_the_accuracy_page_says_plainly_when_there_is_too_little_history(app, auth, owner, monkeypatch):
    at(TODAY, monkeypatch)
    before = auth.client.get("/reorders/accuracy").get_data(as_text=True)
    assert 'id="accuracy-none"' in before and "No predictions yet" in before
    with session_of(app) as session:
        shop(session, TODAY)
        services.refresh_now(session, "cli")
    html = auth.client.get("/reorders/accuracy").get_data(as_text=True)
    assert 'id="not-enough-history"' in html and "Too little history to predict reliably" in html
    assert 'id="accuracy-30"' in html and 'id="accuracy-90"' in html and "Due customers who ordered" in html


def test_a_refresh_asked_for_on_the_page_shows_its_progress_until_it_is_done(app, auth, owner, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        shop(session, TODAY, regulars=2)
    page = auth.client.get("/reorders/").get_data(as_text=True)
    asked = auth.client.post("/reorders/refresh", data={"csrf_token": csrf_from(page)})
    assert asked.status_code == 302
    assert auth.client.get("/reorders/status").get_json()["state"] == "queued"
    with session_of(app) as session:
        run_id = session.scalar(select(PredictionRefresh.id))
        refresher = services.Refresher()
        assert services.due_run(session) == run_id and refresher.claim(session, run_id)
        assert refresher.step(session) == 1  # the histories read, the model fitted
    running = auth.client.get("/reorders/").get_data(as_text=True)
    assert 'data-state="running"' in running and 'id="refresh-progress"' in running and "0 </span>" not in running
    status = auth.client.get("/reorders/status").get_json()
    assert (status["state"], status["processed"], status["total"]) == ("running", 0, 3)
    with session_of(app) as session:
        while refresher.work is not None:
            refresher.step(session)
    status = auth.client.get("/reorders/status").get_json()
    assert (status["state"], status["processed"], status["customers"]) == ("done", 3, 3)


def test_bad_filters_are_a_400_naming_the_field(app, auth, owner, monkeypatch):
    at(TODAY, monkeypatch)
    for query, field in [
        ("horizon=12", "horizon"),
        ("horizon=week", "horizon"),
        ("min=101", "min"),
        ("min=lots", "min"),
        ("product=NOPE", "product"),
        ("after=x", "after"),
    ]:
        response = auth.client.get(f"/reorders/?{query}", headers={"Accept": "application/json"})
        assert response.status_code in (400, 422), response.get_data(as_text=True)
        assert response.get_json()["field"] == field


def test_the_pages_need_a_sign_in(client):
    assert client.get("/reorders/").status_code in (302, 401)
    assert client.get("/reorders/status").status_code in (302, 401)


def test_a_reminder_template_goes_out_only_within_consent_and_outside_the_window(app, auth, owner, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        people = shop(session, TODAY, regulars=3)
        opted_in, unknown, chatting = people["regulars"]
        opted_in.marketing_consent = "opted_in"
        for who in (opted_in, unknown):
            factories.conversation(session, who)
        factories.conversation(session, chatting, last_inbound_at=factories.utcnow() - timedelta(hours=1))
        utility = factories.template(session, "refill_due", body="Hi {{1}}, your refill is due.")
        marketing = factories.template(session, "spring_offer", category="MARKETING", body="Spring offer!")
        factories.template(session, "two_values", body="Hi {{1}}, {{2}}")
        session.commit()
        ids = (opted_in.id, unknown.id, chatting.id, utility.id, marketing.id)
        services.refresh_now(session, "cli")
    opted_in_id, unknown_id, chatting_id, utility_id, marketing_id = ids
    html = auth.client.get("/reorders/?horizon=90").get_data(as_text=True)

    def row_of(contact_id: int) -> str:
        row = html[html.index(f'data-contact="{contact_id}"') :]
        return row[: row.index("</tr>")]

    assert "spring_offer" in row_of(opted_in_id) and "refill_due" in row_of(opted_in_id)
    assert "refill_due" in row_of(unknown_id) and "spring_offer" not in row_of(unknown_id)
    assert "two_values" not in html and "data-send-template" not in row_of(chatting_id)
    token = csrf_from(html)

    def remind(contact_id: int, template_id: int):
        return auth.client.post(
            f"/reorders/{contact_id}/remind",
            data={"csrf_token": token, "template_id": str(template_id)},
            headers={"Accept": "application/json"},
        )

    assert remind(opted_in_id, utility_id).status_code == 302
    refused = remind(unknown_id, marketing_id)
    assert refused.status_code == 422 and refused.get_json()["field"] == "template_id"
    assert remind(chatting_id, utility_id).status_code == 422
    assert remind(unknown_id, 0).status_code == 422
    with session_of(app) as session:
        sent = session.scalars(select(Message).where(Message.direction == "out")).all()
        assert [(message.contact_id, message.type, message.text) for message in sent] == [
            (opted_in_id, "template", "Hi Regular, your refill is due.")
        ]
    assert [entry.detail["type"] for entry in audit(app, "message.queue")] == ["template"]


def test_the_list_names_customers_as_every_other_page_does(app, auth, owner, monkeypatch):
    at(TODAY, monkeypatch)
    with session_of(app) as session:
        people = shop(session, TODAY, regulars=2)
        unnamed, numbered = people["regulars"]
        unnamed.profile_name, unnamed.wa_id, unnamed.user_id = None, None, "US.1234567890"
        numbered.profile_name = None
        session.commit()
        names = {who.id: name_of(who) for who in (unnamed, numbered)}
        expected = ["US.1234567890", numbered.wa_id]
        services.refresh_now(session, "cli")
    html = auth.client.get("/reorders/?horizon=30").get_data(as_text=True)
    for contact_id, name in names.items():
        row = html[html.index(f'data-contact="{contact_id}"') :]
        row = row[: row.index("</tr>")]
        assert f">{name}</a>" in row and "Hi!" in row
    assert list(names.values()) == expected
