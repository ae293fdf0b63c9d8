"""The Broadcasts pages as a shop owner uses them (sigdesk.broadcasts.views): the list, the new-broadcast form,
the draft page with its counts, preview and test send, the campaign page with its live progress call, the
buttons, the recipients CSV, Settings → Broadcasts and the dashboard's campaigns panel. Form posts carry the
page's CSRF token, JSON calls the CSRF header; a refused form keeps what was typed and says why beside the field.
No worker runs here, so nothing is sent: the engine's own tests send."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from markupsafe import escape
from sqlalchemy import func, select, update

from sigdesk.actor import Actor
from sigdesk.broadcasts import commands
from sigdesk.db import utcnow
from sigdesk.models import Contact, Message
from sigdesk.models.broadcast import Broadcast, BroadcastRecipient
from sigdesk.models.contact_import import ImportJob
from sigdesk.segments.commands import create_segment
from sigdesk.settings import services as settings
from tests import factories
from tests.commanding import audit
from tests.conftest import Auth, csrf_from

SYSTEM = Actor.system("cli")
EVERYONE = {"match": "all", "conditions": []}
BODY = "Hello {{1}}, your {{2}} is ready."


@pytest.fixture
def database(app):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "sales.currency", "EUR")
        session.commit()
    return state.database


@pytest.fixture
def shop(database, owner):
    """Three customers (one opted in, one without a name, one who opted out), everyone as a segment, and two
    approved templates: a utility one with two body variables and a marketing one with none."""
    with database.session() as session:
        ana = factories.contact(session, "4917011110001", display_name="Ana Costa", marketing_consent="opted_in")
        nameless = factories.contact(session, "4917011110002", marketing_consent="opted_in")
        out = factories.contact(session, "4917011110003", display_name="Otto", marketing_consent="opted_out")
        ready = factories.template(session, "order_ready", body=BODY, category="UTILITY")
        promo = factories.template(session, "new_batch", body="A new batch is in!", category="MARKETING")
        segment = create_segment(session, SYSTEM, "Everyone", EVERYONE)
        ids = {
            "ana": ana.id,
            "nameless": nameless.id,
            "out": out.id,
            "ready": ready.id,
            "promo": promo.id,
            "segment": segment.id,
        }
        session.commit()
    return ids


def token_of(client) -> str:
    page = client.get("/broadcasts/new").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def form(shop, **changes) -> dict:
    """The new-broadcast form as a person fills it in: the utility template for the whole segment."""
    typed = {
        "name": "Order ready",
        "template": str(shop["ready"]),
        f"t{shop['ready']}.body.1": "{contact.first_name|there}",
        f"t{shop['ready']}.body.2": "order",
        "audience": "segment",
        "segment_id": str(shop["segment"]),
        "rate_per_second": "20",
        "when": "now",
    }
    typed.update(changes)
    return typed


def post(client, path: str, data: dict | None = None, **kwargs):
    payload = dict(data or {})
    payload.setdefault("csrf_token", token_of(client))
    return client.post(path, data=payload, **kwargs)


def create(client, shop, **changes) -> int:
    response = post(client, "/broadcasts/", form(shop, **changes))
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def stored(database, broadcast_id: int) -> Broadcast:
    with database.session() as session:
        found = session.get(Broadcast, broadcast_id)
        session.expunge(found)
        return found


# --- the form ----------------------------------------------------------------------------------------------


def test_the_form_shows_each_approved_template_with_an_input_per_variable_and_the_hint(client, shop):
    html = client.get("/broadcasts/new").get_data(as_text=True)
    assert "order_ready (en_US, utility)" in html and "new_batch (en_US, marketing)" in html
    assert f'name="t{shop["ready"]}.body.1"' in html and f'name="t{shop["ready"]}.body.2"' in html
    assert "Hello {{1}}, your {{2}} is ready." in html
    assert "{contact.fields.KEY}" in html  # each input's hint
    assert "<code>{contact.name}</code>" in html and "<code>|fallback</code>" in html
    assert "Everyone" in html  # the segment to choose
    assert 'value="20"' in html  # the pace of new broadcasts (broadcasts.default_rate)


@pytest.mark.database
def test_an_owner_creates_a_broadcast_from_a_segment_and_sees_who_gets_it(client, database, shop):
    broadcast_id = create(client, shop)
    row = stored(database, broadcast_id)
    assert (row.status, row.template_name, row.rate_per_second) == ("draft", "order_ready", 20)
    html = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert re.search(r'id="will-send">2<', html)  # Ana and the nameless contact: a utility template
    assert "opted out of marketing" in html  # Otto, skipped with the reason
    assert re.search(r'id="limit-share">0\.8 %<', html)  # 2 of the 250 a day
    assert "Hello Ana, your order is ready." in html  # the preview, for the first of the audience
    assert 'id="start-broadcast"' in html and 'id="delete-broadcast"' in html
    assert [entry.target for entry in audit(client.application, "broadcast.created")] == [f"broadcast {broadcast_id}"]


def test_a_refused_form_keeps_what_was_typed_and_says_why_beside_the_field(client, database, shop):
    typed = form(shop, name="Kept name", **{f"t{shop['ready']}.body.1": "{contact.nickname}"})
    response = post(client, "/broadcasts/", typed)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'value="Kept name"' in html and 'value="{contact.nickname}"' in html
    key = f"t{shop['ready']}.body.1"
    assert re.search(rf'id="{re.escape(key)}-error">[^<]*is not a contact value', html)
    assert 'id="broadcast-form-error"' in html  # and the one look of an error at the top
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Broadcast)) == 0


def test_a_missing_variable_and_a_time_in_the_past_are_refused_naming_their_fields(client, shop):
    html = post(client, "/broadcasts/", form(shop, **{f"t{shop['ready']}.body.2": ""})).get_data(as_text=True)
    assert re.search(rf'id="t{shop["ready"]}\.body\.2-error">Say what fills', html)
    past = (datetime.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = post(client, "/broadcasts/", form(shop, when="later", scheduled_at=past))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'id="scheduled_at-error">The time to send is in the past', html)
    assert f'value="{past}"' in html and 'id="when-later" checked' not in html  # the radio is kept too
    assert re.search(r'value="later" checked', html)


PACE_WORDS = "The pace must be between 1 and 80 messages per second (this number's throughput; Settings → Broadcasts)"


def test_the_pace_must_be_a_number_within_the_throughput(client, shop):
    html = post(client, "/broadcasts/", form(shop, rate_per_second="fast")).get_data(as_text=True)
    assert re.search(r'id="rate_per_second-error">The pace is a whole number', html)
    for pace in ("500", "0", "5000"):
        response = post(client, "/broadcasts/", form(shop, rate_per_second=pace))
        assert response.status_code == 400
        html = response.get_data(as_text=True)
        assert f'id="rate_per_second-error">{escape(PACE_WORDS)}<' in html, pace
        assert "greater than or equal" not in html and "less than" not in html
    html = post(client, "/broadcasts/", form(shop, audience="segment", segment_id="")).get_data(as_text=True)
    assert re.search(r'id="audience-error">Choose a segment', html)


def test_an_empty_name_is_asked_for_in_words_not_in_pydantics(client, shop):
    response = post(client, "/broadcasts/", form(shop, name="  "))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="name-error">Give the broadcast a name<' in html
    assert "after validation" not in html and "at least 1" not in html


def test_the_contacts_pages_bulk_action_opens_the_form_with_the_chosen_contacts(client, shop):
    contacts = client.get("/contacts/").get_data(as_text=True)
    assert 'id="bulk-broadcast"' in contacts and 'formaction="/broadcasts/new/from-contacts"' in contacts
    response = post(client, "/broadcasts/new/from-contacts", {"ids": [str(shop["ana"]), str(shop["out"])]})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'name="contact_ids" value="{shop["ana"]},{shop["out"]}"' in html and "2 chosen" in html
    assert re.search(r'value="contacts" checked', html)
    broadcast_id = create(client, shop, audience="contacts", contact_ids=f"{shop['ana']},{shop['out']}")
    html = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert re.search(r'id="will-send">1<', html) and re.search(r'id="skipped-total">1<', html)
    whole = post(client, "/broadcasts/new/from-contacts", {"all": "1"}).get_data(as_text=True)
    assert "save the filter as a segment" in whole


def test_editing_a_draft_shows_what_it_holds_and_saves_the_changes(client, database, shop):
    broadcast_id = create(client, shop)
    html = client.get(f"/broadcasts/{broadcast_id}/edit").get_data(as_text=True)
    assert 'value="Order ready"' in html and 'value="{contact.first_name|there}"' in html
    response = post(client, f"/broadcasts/{broadcast_id}/edit", form(shop, name="Renamed", rate_per_second="5"))
    assert response.status_code == 302
    row = stored(database, broadcast_id)
    assert (row.name, row.rate_per_second) == ("Renamed", 5)


def test_a_scheduled_time_is_read_in_the_business_time_zone(client, database, shop):
    state = client.application.extensions["sigdesk"]
    with database.session() as session:
        settings.set_text(session, state.cipher, "general.timezone", "America/Sao_Paulo")
        session.commit()
    broadcast_id = create(client, shop, when="later", scheduled_at="2099-01-31T09:00")
    assert stored(database, broadcast_id).scheduled_at.replace(tzinfo=timezone.utc) == datetime(
        2099, 1, 31, 12, 0, tzinfo=timezone.utc
    )
    response = post(client, f"/broadcasts/{broadcast_id}/start")
    assert response.status_code == 302
    page = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert "Scheduled: the broadcast starts at 2099-01-31 09:00 (America/Sao_Paulo)" in page
    assert stored(database, broadcast_id).status == "scheduled"


# --- the draft page -------------------------------------------------------------------------------------


def test_the_preview_fills_the_template_for_the_chosen_recipient_or_says_why_they_are_skipped(client, database, shop):
    broadcast_id = create(client, shop, **{f"t{shop['ready']}.body.1": "{contact.name}"})
    answer = client.get(f"/broadcasts/{broadcast_id}/preview?contact_id={shop['ana']}").get_json()
    assert answer == {"contact_id": shop["ana"], "text": "Hello Ana Costa, your order is ready.", "reason": None}
    answer = client.get(f"/broadcasts/{broadcast_id}/preview?contact_id={shop['nameless']}").get_json()
    assert answer["text"] is None and answer["reason"] == "no value for contact.name"
    html = client.get(f"/broadcasts/{broadcast_id}?contact_id={shop['nameless']}").get_data(as_text=True)
    assert "Skipped: no value for contact.name" in html  # without the script, the page's own form
    refused = client.get(f"/broadcasts/{broadcast_id}/preview?contact_id=abc", headers={"Accept": "application/json"})
    assert refused.status_code == 400 and refused.get_json()["field"] == "contact_id"


def test_a_test_send_queues_one_message_to_the_typed_number(client, database, shop):
    broadcast_id = create(client, shop)
    with database.session() as session:
        factories.contact(session, "491709999999", display_name="Me, the owner")
        session.commit()
    page = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert "Only to a number that is already a contact" in page  # the rule is on the page
    response = post(client, f"/broadcasts/{broadcast_id}/test", {"phone": "+49 170 9999999", "contact_id": shop["ana"]})
    assert response.status_code == 302
    assert "Test message queued to +49 170 9999999" in client.get(response.headers["Location"]).get_data(as_text=True)
    with database.session() as session:
        message = session.scalar(select(Message).where(Message.type == "template"))
        assert message.broadcast_id is None and "Ana" in message.details
    refused = post(client, f"/broadcasts/{broadcast_id}/test", {"phone": "not a number"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'value="not a number"' in html and 'id="phone-error"' in html


def test_a_test_send_to_a_number_that_is_not_a_contact_is_refused_and_creates_nobody(client, database, shop):
    broadcast_id = create(client, shop)
    will_send = re.search(r'id="will-send">(\d+)<', client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True))
    with database.session() as session:
        before = session.scalar(select(func.count()).select_from(Contact))
    response = post(client, f"/broadcasts/{broadcast_id}/test", {"phone": "+49 170 5554444", "contact_id": shop["ana"]})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="phone-error">Test sends go only to a number that is already a contact', html)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == before
        assert session.scalar(select(func.count()).select_from(Message)) == 0
    html = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert f'id="will-send">{will_send.group(1)}<' in html  # the audience is what it was


def test_the_preview_list_says_who_would_be_skipped_and_why(client, shop):
    broadcast_id = create(client, shop)
    html = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert re.search(rf'<option value="{shop["out"]}"[^>]*data-skipped>Otto \(skipped: opted out of marketing\)<', html)
    assert re.search(rf'<option value="{shop["ana"]}"[^>]*>Ana Costa<', html)


def test_the_draft_says_how_much_of_the_24_hour_limit_is_already_used_and_the_pace_in_words(client, database, shop):
    with database.session() as session:
        earlier = factories.contact(session, "4917011110009", display_name="Earlier customer")
        where = factories.conversation(session, earlier)
        factories.message(session, where, direction="out", type="template", text="Hi", status="sent")
        session.commit()
    broadcast_id = create(client, shop, rate_per_second="1")
    html = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert re.search(r'Already used in the last 24 hours: <strong id="limit-used-count">1</strong> of 250', html)
    assert "This broadcast adds 2 of the 250 customers" in html and "; with this broadcast 3." in html
    assert "1 message per second" in html and "1 messages" not in html


def test_an_import_that_brought_nobody_is_not_offered_as_an_audience(client, database, shop):
    with database.session() as session:
        for name, created in (("empty.csv", 0), ("list.csv", 2)):
            session.add(
                ImportJob(
                    file_name=name,
                    format="csv",
                    headers="[]",
                    mapping="[]",
                    mode="create",
                    state="done",
                    created=created,
                    finished_at=utcnow(),
                )
            )
        session.commit()
    html = client.get("/broadcasts/new").get_data(as_text=True)
    assert "list.csv" in html and "empty.csv" not in html


def test_a_draft_is_deleted_after_its_confirmation(client, database, shop):
    broadcast_id = create(client, shop)
    html = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert 'data-confirm="Delete this draft?"' in html
    response = post(client, f"/broadcasts/{broadcast_id}/delete")
    assert response.status_code == 302 and response.headers["Location"].endswith("/broadcasts/")
    assert client.get(f"/broadcasts/{broadcast_id}").status_code == 404


# --- the campaign page ----------------------------------------------------------------------------------


@pytest.mark.database
def test_starting_shows_the_campaign_page_with_its_live_progress_call(client, database, shop):
    broadcast_id = create(client, shop)
    response = post(client, f"/broadcasts/{broadcast_id}/start")
    assert response.status_code == 302
    html = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert "Started the broadcast." in html and 'id="pause-broadcast"' in html
    assert 'data-progress-url="/broadcasts/%d/progress"' % broadcast_id in html
    assert html.count('data-recipient="') == 3  # frozen: two to send, Otto skipped
    answer = client.get(f"/broadcasts/{broadcast_id}/progress").get_json()
    assert answer["status"] == "running" and answer["final"] is False
    assert answer["recipient_count"] == 3 and answer["done"] == 1
    assert answer["counts"]["pending"] == 2 and answer["counts"]["skipped"] == 1 and answer["counts"]["unknown"] == 0
    assert set(answer["series"]) == {"at", "sent", "delivered", "read", "replied", "failed", "skipped"}
    assert answer["banner"] is None and answer["failures"] == []


@pytest.mark.database
def test_pause_resume_and_cancel_follow_the_buttons_and_the_banner_says_why(client, database, shop):
    broadcast_id = create(client, shop)
    post(client, f"/broadcasts/{broadcast_id}/start")
    html = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert 'data-confirm="Pause this broadcast?' in html and 'data-confirm="Cancel this broadcast for good?' in html
    post(client, f"/broadcasts/{broadcast_id}/pause")
    answer = client.get(f"/broadcasts/{broadcast_id}/progress").get_json()
    assert answer["status"] == "paused" and answer["pause_kind"] == "person"
    assert "Press Resume to go on" in answer["banner"]
    post(client, f"/broadcasts/{broadcast_id}/resume")
    assert stored(database, broadcast_id).status == "running"
    post(client, f"/broadcasts/{broadcast_id}/cancel")
    answer = client.get(f"/broadcasts/{broadcast_id}/progress").get_json()
    assert answer["status"] == "cancelled" and answer["final"] is True and answer["counts"]["pending"] == 0
    refused = post(client, f"/broadcasts/{broadcast_id}/resume")
    assert refused.status_code == 302
    assert "already cancelled" in client.get(refused.headers["Location"]).get_data(as_text=True)


def test_a_limit_pause_says_when_it_goes_on_and_an_access_pause_says_what_to_do(client, database, shop):
    broadcast_id = create(client, shop)
    post(client, f"/broadcasts/{broadcast_id}/start")
    with database.session() as session:
        resume_at = datetime(2099, 1, 1, 10, 30, tzinfo=timezone.utc)
        commands.pause_by_system(session, broadcast_id, "limit", "Messaging limit of 250 reached", resume_at)
        session.commit()
    answer = client.get(f"/broadcasts/{broadcast_id}/progress").get_json()
    assert answer["banner"] == "Messaging limit of 250 reached. It goes on by itself at 2099-01-01 10:30."
    assert answer["banner"] in client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    with database.session() as session:
        session.execute(update(Broadcast).values(pause_kind="access", pause_reason="The access token was revoked"))
        session.commit()
    html = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert "The access token was revoked. SigDesk can no longer send" in html and "Settings → Connection" in html
    assert 'id="resume-broadcast"' in html


def _sent(database, broadcast_id: int, **values) -> None:
    """What the engine and its followers record, written here so the pages have results to show."""
    with database.session() as session:
        session.execute(
            update(BroadcastRecipient)
            .where(BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.state == "pending")
            .values(**values)
        )
        session.commit()


@pytest.mark.database
def test_failures_are_grouped_and_recipients_are_filtered_by_state_and_paged(client, database, shop):
    with database.session() as session:
        for number in range(55):
            factories.contact(session, f"49170222{number:05d}", display_name=f"Guest {number}")
        session.commit()
    broadcast_id = create(client, shop)
    post(client, f"/broadcasts/{broadcast_id}/start")
    _sent(database, broadcast_id, state="failed", reason="Message undeliverable", error_code=131026)
    page = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert re.search(r"<td>Message undeliverable</td><td>131026</td><td>57</td>", page)
    assert 'Message undeliverable <span class="muted small">(131026)</span></td>' in page
    assert page.count('data-recipient="') == 50 and 'id="recipients-next"' in page
    following = re.search(r'id="recipients-next" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert client.get(following).get_data(as_text=True).count('data-recipient="') == 8
    skipped = client.get(f"/broadcasts/{broadcast_id}?state=skipped").get_data(as_text=True)
    assert skipped.count('data-recipient="') == 1 and "opted out of marketing" in skipped
    answer = client.get(f"/broadcasts/{broadcast_id}/progress").get_json()
    assert answer["failures"] == [{"code": 131026, "reason": "Message undeliverable", "count": 57}]
    with database.session() as session:  # a reason that already says the code does not say it twice
        failed = BroadcastRecipient.state == "failed"
        session.execute(
            update(BroadcastRecipient).where(failed).values(reason="cannot receive WhatsApp (Meta error 131026)")
        )
        session.commit()
    again = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert "(Meta error 131026)</td>" in again and "(Meta error 131026) <span" not in again


@pytest.mark.database
def test_a_reply_links_to_its_conversation(client, database, shop):
    broadcast_id = create(client, shop, audience="contacts", contact_ids=str(shop["ana"]))
    post(client, f"/broadcasts/{broadcast_id}/start")
    with database.session() as session:
        conversation = factories.conversation(session, session.get(Contact, shop["ana"]))
        reply = factories.message(session, conversation, direction="in", text="Thanks!")
        ids = (conversation.id, reply.id)
        session.commit()
    now = utcnow()
    _sent(database, broadcast_id, state="replied", sent_at=now, replied_at=now, reply_message_id=ids[1])
    html = client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert f'href="/inbox/?c={ids[0]}&amp;m={ids[1]}" data-reply' in html


def test_the_recipients_csv_is_formula_safe(client, database, shop):
    with database.session() as session:
        session.get(Contact, shop["ana"]).display_name = '=HYPERLINK("http://x")'
        session.commit()
    broadcast_id = create(client, shop)
    post(client, f"/broadcasts/{broadcast_id}/start")
    response = client.get(f"/broadcasts/{broadcast_id}/recipients.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeffcontact_id,name,wa_id,state,")  # Excel reads the names' accents as UTF-8
    rows = list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"))))
    assert len(rows) == 3
    assert rows[0]["name"] == '\'=HYPERLINK("http://x")' and rows[0]["wa_id"] == "4917011110001"
    assert {row["state"] for row in rows} == {"pending", "skipped"}
    only = client.get(f"/broadcasts/{broadcast_id}/recipients.csv?state=skipped").get_data(as_text=True)
    assert len(list(csv.DictReader(io.StringIO(only)))) == 1


def test_names_reasons_and_template_text_are_shown_as_text_never_run_as_html(client, database, shop):
    evil = '<img src=x onerror="alert(1)">'
    with database.session() as session:
        session.get(Contact, shop["ana"]).display_name = evil
        session.commit()
    broadcast_id = create(client, shop, name=evil, **{f"t{shop['ready']}.body.2": "{contact.name}"})
    draft = client.get(f"/broadcasts/{broadcast_id}?contact_id={shop['ana']}").get_data(as_text=True)
    post(client, f"/broadcasts/{broadcast_id}/start")
    _sent(database, broadcast_id, state="failed", reason=evil)
    pages = [
        draft,
        client.get(f"/broadcasts/{broadcast_id}").get_data(as_text=True),
        client.get("/broadcasts/").get_data(as_text=True),
    ]
    for html in pages:
        assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
    preview = client.get(f"/broadcasts/{broadcast_id}/preview?contact_id={shop['ana']}")
    assert preview.mimetype == "application/json"  # the page's script puts it in with textContent


def test_the_list_shows_each_broadcast_with_its_status_and_progress(client, database, shop):
    first = create(client, shop, name="First")
    create(client, shop, name="Second")
    post(client, f"/broadcasts/{first}/start")
    html = client.get("/broadcasts/").get_data(as_text=True)
    listed = [int(found) for found in re.findall(r'data-broadcast="(\d+)"', html)]
    assert listed[1] == first and len(listed) == 2  # newest first
    assert re.search(r'<progress max="3" value="1"', html) and "not started" in html
    assert 'id="nav-broadcasts"' in html


# --- who may -------------------------------------------------------------------------------------------


def test_agents_are_refused_every_page_and_call(app, auth, client, database, shop):
    broadcast_id = create(client, shop)
    person = auth.create_user("agent", "ada@example.com", "Ada Agent")
    agent = app.test_client()
    Auth(app, agent).login(person)
    token = csrf_from(agent.get("/account/").get_data(as_text=True))
    for path in (
        "/broadcasts/",
        "/broadcasts/new",
        f"/broadcasts/{broadcast_id}",
        f"/broadcasts/{broadcast_id}/edit",
        f"/broadcasts/{broadcast_id}/progress",
        f"/broadcasts/{broadcast_id}/preview?contact_id={shop['ana']}",
        f"/broadcasts/{broadcast_id}/recipients.csv",
        "/admin/broadcasts",
    ):
        assert agent.get(path).status_code == 403, path
    for path in (
        "/broadcasts/",
        "/broadcasts/new/from-contacts",
        f"/broadcasts/{broadcast_id}/edit",
        f"/broadcasts/{broadcast_id}/start",
        f"/broadcasts/{broadcast_id}/pause",
        f"/broadcasts/{broadcast_id}/test",
        f"/broadcasts/{broadcast_id}/delete",
        "/admin/broadcasts",
    ):
        assert agent.post(path, data={"csrf_token": token}).status_code == 403, path
    assert 'id="nav-broadcasts"' not in agent.get("/").get_data(as_text=True)
    assert 'id="bulk-broadcast"' not in agent.get("/contacts/").get_data(as_text=True)
    assert stored(database, broadcast_id).status == "draft"


def test_a_post_without_the_csrf_token_changes_nothing(client, database, shop):
    broadcast_id = create(client, shop)
    for path in (f"/broadcasts/{broadcast_id}/start", f"/broadcasts/{broadcast_id}/delete", "/broadcasts/"):
        assert client.post(path, data=form(shop)).status_code == 400, path
    assert stored(database, broadcast_id).status == "draft"
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Broadcast)) == 1


# --- Settings → Broadcasts ------------------------------------------------------------------------------


def test_the_settings_page_saves_the_limits_and_keeps_a_refused_value(client, database, shop):
    state = client.application.extensions["sigdesk"]
    assert client.get("/admin/broadcasts/").status_code == 200  # with a slash too, as /admin/templates/
    html = client.get("/admin/broadcasts").get_data(as_text=True)
    assert 'data-setting="broadcasts"' in html and 'aria-current="page"' in html
    values = {
        "whatsapp.messaging_limit": "2000",
        "whatsapp.throughput": "200",
        "broadcasts.default_rate": "50",
        "broadcasts.utility_consent": "opted_in",
        "broadcasts.attribution_days": "14",
    }
    assert post(client, "/admin/broadcasts", values).status_code == 302
    with database.session() as session:
        assert settings.get(session, state.cipher, "whatsapp.messaging_limit") == "2000"
        assert settings.get(session, state.cipher, "broadcasts.attribution_days") == 14
        assert settings.get(session, state.cipher, "broadcasts.utility_consent") == "opted_in"
    refused = post(
        client, "/admin/broadcasts", {**values, "whatsapp.throughput": "5000", "broadcasts.default_rate": "7"}
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'id="whatsapp.throughput-error"' in html and 'value="5000"' in html and 'value="7"' in html
    too_fast = post(client, "/admin/broadcasts", {**values, "broadcasts.default_rate": "300"}).get_data(as_text=True)
    assert "must not exceed the throughput (200)" in too_fast
    with database.session() as session:
        assert settings.get(session, state.cipher, "whatsapp.throughput") == 200


# --- Analytics -----------------------------------------------------------------------------------------


@pytest.mark.database
def test_the_dashboard_shows_each_campaign_with_its_replies_and_the_orders_that_followed(client, database, shop):
    broadcast_id = create(client, shop)
    post(client, f"/broadcasts/{broadcast_id}/start")
    now = utcnow()
    _sent(database, broadcast_id, state="delivered", sent_at=now - timedelta(days=2))
    with database.session() as session:  # Meta took it, then said it cannot be delivered: not "sent"
        factories.recipient(
            session,
            session.get(Broadcast, broadcast_id),
            state="failed",
            reason="cannot receive WhatsApp (Meta error 131026)",
            error_code=131026,
            sent_at=now - timedelta(days=2),
        )
        session.commit()
    with database.session() as session:
        session.execute(
            update(BroadcastRecipient)
            .where(BroadcastRecipient.contact_id == shop["ana"])
            .values(state="replied", replied_at=now - timedelta(days=2))
        )
        ana = session.get(Contact, shop["ana"])
        factories.order(session, ana, lines=[(None, 2, 1250)], ordered_at=now - timedelta(days=1))
        factories.order(session, ana, lines=[(None, 1, 999)], ordered_at=now - timedelta(days=3))  # before it
        factories.order(session, ana, lines=[(None, 1, 500)], status="cancelled", ordered_at=now - timedelta(hours=1))
        session.commit()
    chart = client.get("/analytics/charts/broadcasts?period=7d").get_json()
    assert chart["columns"][:6] == ["Campaign", "Started", "Status", "Sent", "Replied", "Orders"]
    assert [row[0] for row in chart["rows"]] == ["Order ready"]
    assert chart["rows"][0][3:] == [2, 1, 1, 25.0]
    assert chart["totals"] == {"campaigns": 1, "sent": 2, "replied": 1, "orders": 1, "revenue": 25.0}
    assert "within 7 days" in chart["notes"][0]
    assert 'id="chart-broadcasts"' in client.get("/analytics/").get_data(as_text=True)


def test_a_template_with_a_media_header_and_a_url_button_asks_for_each_of_its_values(client, database, shop):
    components = [
        {"type": "HEADER", "format": "IMAGE"},
        {"type": "BODY", "text": "Hi {{1}}, the new menu is out."},
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
        {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "See it", "url": "https://shop.example/m/{{1}}"}]},
    ]
    with database.session() as session:
        menu = factories.template(session, "menu_out", category="UTILITY", components=components).id
        session.commit()
    html = client.get("/broadcasts/new").get_data(as_text=True)
    for key in (f"t{menu}.header.link", f"t{menu}.body.1", f"t{menu}.button_0.1"):
        assert f'name="{key}"' in html, key
    assert "Header image: a link" in html and "See it" in html and "Reply STOP to opt out" in html
    broadcast_id = create(
        client,
        shop,
        template=str(menu),
        **{
            f"t{menu}.header.link": "https://shop.example/menu.jpg",
            f"t{menu}.body.1": "{contact.first_name|there}",
            f"t{menu}.button_0.1": "december",
        },
    )
    with database.session() as session:
        saved = json.loads(session.get(Broadcast, broadcast_id).variables)
    assert saved == {
        "header": {"link": "https://shop.example/menu.jpg"},
        "body": {"1": "{contact.first_name|there}"},
        "button_0": {"1": "december"},
    }
    answer = client.get(f"/broadcasts/{broadcast_id}/preview?contact_id={shop['ana']}").get_json()
    assert "Hi Ana, the new menu is out." in answer["text"]


def test_the_progress_call_draws_cumulative_counts_over_time(client, database, shop):
    broadcast_id = create(client, shop)
    post(client, f"/broadcasts/{broadcast_id}/start")
    started = stored(database, broadcast_id).started_at
    _sent(database, broadcast_id, state="read", sent_at=started, delivered_at=started, read_at=started)
    series = client.get(f"/broadcasts/{broadcast_id}/progress").get_json()["series"]
    assert series["at"] and series["at"] == sorted(series["at"])
    assert (series["sent"][-1], series["delivered"][-1], series["read"][-1], series["failed"][-1]) == (2, 2, 2, 0)
