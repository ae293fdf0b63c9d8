"""The inbox pages and calls as the browser uses them: session cookie, CSRF header, JSON or HTML fragments."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from sigdesk.whatsapp_account.services import client_or_none
from sigdesk.db import utcnow
from sigdesk.inbox import schemas
from sigdesk.models import CannedResponse, Conversation, Message, Note, Template
from sigdesk.outbound import services as outbound
from sigdesk.settings import services as settings
from tests.fakes.graph import PHONE_NUMBER_ID, TOKEN, WABA_ID
from tests.inbox.helpers import FIXTURES, assign, customer_writes, deliver_fixtures, hours_ago, user_id


class Browser:
    """A signed-in person's calls, with the CSRF token from the page's meta tag."""

    def __init__(self, client):
        self.client = client
        page = client.get("/inbox/").get_data(as_text=True)
        self.token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def post(self, path: str, body=None, **kwargs):
        return self.client.post(
            path, json=body if body is not None else {}, headers={"X-CSRFToken": self.token}, **kwargs
        )

    def post_raw(self, path: str, data: str):
        """A body as sent, for what json= cannot spell (lone surrogates, non-objects)."""
        return self.client.post(
            path, data=data.encode("utf-8"), content_type="application/json", headers={"X-CSRFToken": self.token}
        )

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)


JSON = {"Accept": "application/json"}


@pytest.fixture
def database(app):
    return app.extensions["sigdesk"].database


@pytest.fixture
def owner_browser(owner, client):
    return Browser(client)


def agent_browser(app, auth, email="ada@example.com"):
    person = auth.create_user("agent", email, "Ada Agent")
    client = app.test_client()
    from tests.conftest import Auth

    Auth(app, client).login(person)
    return Browser(client)


def connect(app, fake_graph):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        for key, value in {
            "whatsapp.access_token": TOKEN,
            "whatsapp.phone_number_id": PHONE_NUMBER_ID,
            "whatsapp.waba_id": WABA_ID,
            "whatsapp.graph_base_url": fake_graph.url,
        }.items():
            settings.set_text(session, state.cipher, key, value)


def run_sender(app):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        return outbound.send_due(session, lambda s: client_or_none(s, state.cipher))


def test_signing_in_lands_in_the_inbox(owner, client, database):
    customer_writes(database, "15557770000", "hi", name="Rosa Rossi")
    for path in ("/", "/inbox/"):
        page = client.get(path).get_data(as_text=True)
        assert 'id="conversation-list"' in page and "js/inbox.js" in page and "Keyboard shortcuts" in page
        assert "Hello, Olive Owner" in page and "turn on two-factor authentication" in page and "Rosa Rossi" in page


def test_the_list_shows_rows_with_preview_unread_and_window_badge(owner_browser, database):
    conversation_id = customer_writes(database, "15557770001", "Do you deliver on *Sundays*?", name="Rosa Rossi")
    html = owner_browser.get("/inbox/list?view=all&status=open").get_data(as_text=True)
    assert f'id="conv-{conversation_id}"' in html and "Rosa Rossi" in html and ">RR<" in html
    assert "Do you deliver on Sundays?" in html and 'class="count"' in html and "badge window open" in html
    response = owner_browser.get("/inbox/list")
    assert response.headers["X-Unread-Total"] == "1"


def test_agents_list_only_their_own_and_unassigned(app, auth, owner, database):
    mine = customer_writes(database, "15557770002", "mine")
    other = customer_writes(database, "15557770003", "other")
    agent = agent_browser(app, auth)
    assign(database, mine, user_id(database, "ada@example.com"))
    assign(database, other, user_id(database, "owner@example.com"))
    html = agent.get("/inbox/list").get_data(as_text=True)
    assert f'id="conv-{mine}"' in html and f'id="conv-{other}"' not in html
    assert agent.get(f"/inbox/c/{other}").status_code == 404
    assert agent.post(f"/inbox/c/{other}/notes", {"body": "peek"}).status_code == 404


def test_bad_requests_get_clear_4xx_answers(owner_browser, database):
    conversation_id = customer_writes(database, "15557770004", "hi")
    cases = [
        (owner_browser.get("/inbox/c/99999", headers={"Accept": "application/json"}), 404, "No such conversation"),
        (
            owner_browser.post(f"/inbox/c/{conversation_id}/status", {"status": "sleeping"}),
            400,
            "'status': Input should be 'open'",
        ),
        (
            owner_browser.post(
                f"/inbox/c/{conversation_id}/status",
                {"status": "snoozed", "snoozed_until": (utcnow() - timedelta(hours=1)).isoformat()},
            ),
            400,
            "in the past",
        ),
        (
            owner_browser.post(
                f"/inbox/c/{conversation_id}/status", {"status": "snoozed", "snoozed_until": "tomorrow"}
            ),
            400,
            "date and time",
        ),
        (owner_browser.post(f"/inbox/c/{conversation_id}/notes", {"body": "  "}), 400, "needs some text"),
        (
            owner_browser.post(f"/inbox/c/{conversation_id}/assign", {"assignee_id": 424242}),
            400,
            "no active team member",
        ),
        (owner_browser.post(f"/inbox/c/{conversation_id}/send", {"text": ""}), 400, "Write a message"),
        (
            owner_browser.get("/inbox/list?status=nope", headers={"Accept": "application/json"}),
            400,
            "'status': Input should be",
        ),
        (owner_browser.get("/inbox/list?before=garbage", headers={"Accept": "application/json"}), 400, "list position"),
        (
            owner_browser.get(f"/inbox/c/{conversation_id}?around=999999", headers={"Accept": "application/json"}),
            404,
            "No such message",
        ),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.get_data(as_text=True)
        assert words in response.get_json()["error"]
    with owner_browser.client.application.extensions["sigdesk"].database.session() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation.status == "open" and session.scalar(select(Note.id)) is None


def test_status_snooze_assignment_and_labels_change_and_are_recorded(owner_browser, database):
    conversation_id = customer_writes(database, "15557770005", "hi")
    until = (utcnow() + timedelta(hours=2)).isoformat()
    assert (
        owner_browser.post(
            f"/inbox/c/{conversation_id}/status", {"status": "snoozed", "snoozed_until": until}
        ).status_code
        == 200
    )
    assert owner_browser.post(f"/inbox/c/{conversation_id}/assign", {"assignee_id": "me"}).get_json()["assignee_id"]
    label = owner_browser.post("/inbox/labels", {"name": "VIP"}).get_json()["id"]
    assert owner_browser.post(f"/inbox/c/{conversation_id}/labels", {"label_id": label, "on": True}).status_code == 200
    with database.session() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation.status == "snoozed" and conversation.snoozed_until is not None
    panel = owner_browser.get(f"/inbox/c/{conversation_id}/panel").get_data(as_text=True)
    assert "snoozed this until" in panel and "assigned this to Olive Owner" in panel and "checked" in panel
    assert "snoozed" in owner_browser.get("/inbox/list?status=snoozed").get_data(as_text=True)
    assert "VIP" in owner_browser.get(f"/inbox/list?status=any&label={label}").get_data(as_text=True)


def test_a_thread_renders_every_message_type(owner_browser, database):
    deliver_fixtures(database, *[path.stem for path in sorted(FIXTURES.glob("message_*.json"))])
    with database.session() as session:
        conversation_ids = set(session.scalars(select(Conversation.id)))
    html = "".join(owner_browser.get(f"/inbox/c/{cid}").get_data(as_text=True) for cid in conversation_ids)
    for expected in [
        "Hello, is the shop open",
        "🎤 Voice message",
        "invoice-2024-11.pdf",
        "Dora Delivery",
        "+1 555 123 0004",
        "openstreetmap.org/?mlat=52.520008",
        "Alexanderplatz 1, Berlin",
        "Tapped a button",
        "Yes, confirm",
        "Chose from the list",
        "Morning slot",
        "Filled in a form",
        "rating",
        "{not json",
        "Call permission",
        "Tapped a template button",
        "Stop promotions",
        "37.60 EUR",
        "SKU-TEA",
        "Please deliver after 5pm",
        "The customer deleted this message",
        "Sticker",
        "(animated)",
        "changed from 15551230002",
        "cannot be shown",
        "(poll)",
        "Forwarded many times",
        "From an ad",
        "Red mugs",
        "Asked about product",
        "🎥 Video",
        "Unboxing",
        "Phone app",
        "Replying",
    ]:
        assert expected in html, expected
    assert "wamid.FIX.edit.1" not in html and "wamid.FIX.revoke.1" not in html  # notices show on their target


def test_customer_text_is_escaped_then_formatted(owner_browser, database):
    conversation_id = customer_writes(
        database, "15557770006", "<script>alert(1)</script> *big* _slanted_ ~gone~ ```x<y```"
    )
    html = owner_browser.get(f"/inbox/c/{conversation_id}").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<strong>big</strong> <em>slanted</em> <s>gone</s>" in html and '<code class="mono">x&lt;y</code>' in html


def test_jump_to_message_centres_the_page_on_it(owner_browser, database):
    conversation_id = None
    for n in range(80):
        conversation_id = customer_writes(database, "15557770007", f"line {n}", at=hours_ago(3) + timedelta(seconds=n))
    with database.session() as session:
        target = session.scalar(select(Message.id).where(Message.text == "line 5"))
    html = owner_browser.get(f"/inbox/c/{conversation_id}?around={target}").get_data(as_text=True)
    assert f'id="msg-{target}"' in html and "focus" in html and "Jump to the latest messages" in html
    older = owner_browser.get(f"/inbox/c/{conversation_id}/messages?before={target}").get_data(as_text=True)
    assert "line 4" in older and "line 5" not in older


def test_a_reply_is_queued_and_reaches_the_graph_api(app, owner_browser, database, fake_graph):
    connect(app, fake_graph)
    conversation_id = customer_writes(database, "15557770008", "Is my cake ready?")
    response = owner_browser.post(f"/inbox/c/{conversation_id}/send", {"text": "Yes, *today* at 5"})
    assert response.status_code == 202
    assert run_sender(app) == 1
    assert [sent["text"]["body"] for sent in fake_graph.sent] == ["Yes, *today* at 5"]
    html = owner_browser.get(f"/inbox/c/{conversation_id}").get_data(as_text=True)
    assert "Olive Owner" in html and 'class="tick sent"' in html


def test_private_notes_never_reach_whatsapp(app, owner_browser, database, fake_graph):
    connect(app, fake_graph)
    conversation_id = customer_writes(database, "15557770009", "hello")
    response = owner_browser.post(f"/inbox/c/{conversation_id}/notes", {"body": "Customer is *rude*, be patient"})
    assert response.status_code == 201
    note_id = response.get_json()["note_id"]
    assert run_sender(app) == 0
    assert fake_graph.requests == []
    html = owner_browser.get(f"/inbox/c/{conversation_id}/notes/{note_id}").get_data(as_text=True)
    assert "Private note" in html and "<strong>rude</strong>" in html
    with database.session() as session:
        assert session.scalar(select(Message.id).where(Message.direction == "out")) is None


def test_free_text_is_refused_when_the_window_closed_and_a_template_is_offered(
    app, owner_browser, database, fake_graph
):
    connect(app, fake_graph)
    conversation_id = customer_writes(database, "15557770010", "hello", at=hours_ago(30))
    with database.session() as session:
        session.add(
            Template(
                name="order_ready",
                language="en",
                status="APPROVED",
                category="UTILITY",
                components=json.dumps([{"type": "BODY", "text": "Hi {{1}}, your order {{2}} is ready."}]),
            )
        )
        session.add(Template(name="draft", language="en", status="PENDING", components="[]"))
    html = owner_browser.get(f"/inbox/c/{conversation_id}").get_data(as_text=True)
    assert (
        "24h window closed" in html
        and 'id="template-select"' in html
        and "order_ready" in html
        and ">draft" not in html
    )
    refused = owner_browser.post(f"/inbox/c/{conversation_id}/send", {"text": "hi"})
    assert refused.status_code == 422 and "window is closed" in refused.get_json()["error"]
    with database.session() as session:
        template_id = session.scalar(select(Template.id).where(Template.name == "order_ready"))
    missing = owner_browser.post(
        f"/inbox/c/{conversation_id}/template", {"template_id": template_id, "params": {"body": ["Rosa"]}}
    )
    assert missing.status_code == 400 and "all 2 variables" in missing.get_json()["error"]
    sent = owner_browser.post(
        f"/inbox/c/{conversation_id}/template", {"template_id": template_id, "params": {"body": ["Rosa", "#12"]}}
    )
    assert sent.status_code == 202
    run_sender(app)
    assert fake_graph.sent[-1]["template"]["components"][0]["parameters"][1]["text"] == "#12"
    html = owner_browser.get(f"/inbox/c/{conversation_id}").get_data(as_text=True)
    assert "Hi Rosa, your order #12 is ready." in html


def test_opening_marks_read(owner_browser, database):
    conversation_id = customer_writes(database, "15557770011", "hello")
    assert owner_browser.post(f"/inbox/c/{conversation_id}/read").status_code == 200
    with database.session() as session:
        assert session.get(Conversation, conversation_id).unread_count == 0


def test_admins_manage_canned_responses_and_duplicates_conflict(owner_browser, database):
    created = owner_browser.post("/inbox/canned", {"shortcut": "hours", "body": "We open at 9, {{name}}."})
    assert created.status_code == 201
    duplicate = owner_browser.post("/inbox/canned", {"shortcut": "/hours", "body": "again"})
    assert duplicate.status_code == 409 and "already taken" in duplicate.get_json()["error"]
    canned_id = created.get_json()["id"]
    assert (
        owner_browser.post(f"/inbox/canned/{canned_id}", {"shortcut": "opening", "body": "9 to 5"}).status_code == 200
    )
    assert owner_browser.get("/inbox/canned?q=/op").get_json()["canned"] == [
        {"id": canned_id, "shortcut": "opening", "body": "9 to 5"}
    ]
    assert "opening" in owner_browser.get("/inbox/settings").get_data(as_text=True)
    assert owner_browser.post(f"/inbox/canned/{canned_id}/delete").status_code == 200
    with database.session() as session:
        assert session.scalar(select(CannedResponse.id)) is None


def test_agents_use_but_cannot_manage_canned_responses(app, auth, owner, database):
    with database.session() as session:
        session.add(CannedResponse(shortcut="hi", body="Hello!"))
    agent = agent_browser(app, auth)
    assert agent.get("/inbox/canned").get_json()["canned"][0]["shortcut"] == "hi"
    assert agent.post("/inbox/canned", {"shortcut": "mine", "body": "x"}).status_code == 403
    assert agent.post("/inbox/labels", {"name": "x"}).status_code == 403
    assert agent.get("/inbox/settings").status_code == 403
    assert agent.post("/inbox/settings/visibility", {"inbox.agents_see_all": True}).status_code == 403


def test_the_visibility_setting_is_changed_by_admins(app, auth, owner_browser, database):
    other = customer_writes(database, "15557770012", "other")
    assign(database, other, user_id(database, "owner@example.com"))
    agent = agent_browser(app, auth)
    assert agent.get(f"/inbox/c/{other}").status_code == 404
    assert owner_browser.post("/inbox/settings/visibility", {"inbox.agents_see_all": True}).get_json()["agents_see_all"]
    assert agent.get(f"/inbox/c/{other}").status_code == 200
    assert agent.get("/media/999999").status_code == 404


def test_changes_are_refused_without_the_csrf_token(owner_browser, database):
    conversation_id = customer_writes(database, "15557770013", "hello")
    response = owner_browser.client.post(f"/inbox/c/{conversation_id}/notes", json={"body": "x"})
    assert response.status_code == 400


BAD_BODIES = [
    ("send", '{"text": 5}', "text"),
    ("send", '{"text": "\\ud800"}', "text"),
    ("send", '{"text": "hi", "reply_to": ""}', "reply_to"),
    ("send", "[]", "body"),
    ("send", "not json", "body"),
    ("react", '{"message_id": "5", "emoji": "x"}', "message_id"),
    ("react", '{"message_id": 18446744073709551616, "emoji": "x"}', "message_id"),
    ("react", '{"message_id": 1.0, "emoji": "x"}', "message_id"),
    ("react", '{"message_id": 1, "emoji": 5}', "emoji"),
    ("template", '{"template_id": "١٢"}', "template_id"),
    ("template", '{"template_id": true}', "template_id"),
    ("template", '{"template_id": 1, "params": {"body": "Rosa"}}', "params"),
    ("notes", '{"body": ["x"]}', "body"),
    ("notes", '{"body": "\\udfff"}', "body"),
    ("assign", '{"assignee_id": "12"}', "assignee_id"),
    ("assign", '{"assignee_id": true}', "assignee_id"),
    ("assign", "{}", "assignee_id"),
    ("status", '{"status": "sleeping"}', "status"),
    ("status", '{"status": 1}', "status"),
    ("status", '{"status": "snoozed", "snoozed_until": "2030-01-31T09:00:00"}', "snoozed_until"),
    ("status", '{"status": "snoozed", "snoozed_until": 1900000000}', "snoozed_until"),
    ("labels", '{"label_id": 1, "on": "yes"}', "on"),
    ("labels", '{"label_id": "1", "on": true}', "label_id"),
]


@pytest.mark.parametrize("call, body, field", BAD_BODIES)
def test_bodies_of_the_wrong_shape_are_400_naming_the_field_and_change_nothing(
    owner_browser, database, call, body, field
):
    conversation_id = customer_writes(database, "15557770020", "hi")
    response = owner_browser.post_raw(f"/inbox/c/{conversation_id}/{call}", body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["field"] == field
    with database.session() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation.status == "open" and conversation.assignee_id is None
        assert session.scalar(select(Note.id)) is None
        assert session.scalar(select(Message.id).where(Message.direction == "out")) is None


def test_a_snooze_without_a_time_zone_says_so(owner_browser, database):
    conversation_id = customer_writes(database, "15557770021", "hi")
    response = owner_browser.post(
        f"/inbox/c/{conversation_id}/status", {"status": "snoozed", "snoozed_until": "2030-01-31T09:00:00"}
    )
    assert response.status_code == 400 and "time zone" in response.get_json()["error"]


@pytest.mark.parametrize("value", ["١٢", "²", "0", "abc", str(2**53), str(2**64)])
def test_path_ids_out_of_bounds_or_in_other_digits_are_400(owner_browser, value):
    for response, field in (
        (owner_browser.post(f"/inbox/c/{value}/read"), "conversation_id"),
        (owner_browser.post(f"/inbox/c/{value}/notes", {"body": "x"}), "conversation_id"),
        (owner_browser.get(f"/inbox/c/{value}/panel", headers=JSON), "conversation_id"),
        (owner_browser.get(f"/inbox/c/1/messages/{value}", headers=JSON), "message_id"),
        (owner_browser.post(f"/inbox/canned/{value}/delete"), "canned_id"),
        (owner_browser.post(f"/inbox/labels/{value}/delete"), "label_id"),
    ):
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.get_json()["field"] == field


@pytest.mark.parametrize(
    "path, field",
    [
        ("/inbox/list?view=everyone", "view"),
        ("/inbox/list?status=sleeping", "status"),
        ("/inbox/list?label=١", "label"),
        ("/inbox/list?label=-1", "label"),
        ("/inbox/list?unread=maybe", "unread"),
        ("/inbox/list?before=garbage", "before"),
        ("/inbox/list?status=open&status=any", "status"),
        ("/inbox/?view=everyone", "view"),
        ("/inbox/c/{c}?around=١", "around"),
        ("/inbox/c/{c}/messages", "before"),
        (f"/inbox/c/{{c}}/messages?before={2**63}", "before"),
        ("/inbox/c/{c}/messages?after=x", "after"),
        ("/inbox/canned?q=" + "x" * 101, "q"),
    ],
)
def test_query_strings_of_the_wrong_shape_are_400_naming_the_field(owner_browser, database, path, field):
    conversation_id = customer_writes(database, "15557770022", "hi")
    response = owner_browser.get(path.format(c=conversation_id), headers=JSON)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["field"] == field


def test_empty_query_fields_mean_the_defaults(owner_browser, database):
    conversation_id = customer_writes(database, "15557770023", "hi")
    html = owner_browser.get("/inbox/list?view=&status=&label=&unread=&before=").get_data(as_text=True)
    assert f'id="conv-{conversation_id}"' in html
    assert owner_browser.get(f"/inbox/c/{conversation_id}?around=").status_code == 200


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/inbox/canned", '{"shortcut": 5, "body": "x"}', "shortcut"),
        ("/inbox/canned", '{"shortcut": "hi", "body": "\\ud800"}', "body"),
        ("/inbox/labels", '{"name": ["VIP"]}', "name"),
        ("/inbox/settings/visibility", '{"inbox.agents_see_all": "maybe"}', "inbox.agents_see_all"),
        ("/inbox/settings/visibility", "[]", "body"),
    ],
)
def test_settings_calls_of_the_wrong_shape_are_400_naming_the_field(owner_browser, database, path, body, field):
    response = owner_browser.post_raw(path, body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["field"] == field
    with database.session() as session:
        assert session.scalar(select(CannedResponse.id)) is None


def test_the_settings_page_forms_still_post_as_forms(owner_browser, database):
    form = {"csrf_token": owner_browser.token, "shortcut": "hours", "body": "We open at 9."}
    response = owner_browser.client.post("/inbox/canned", data=form)
    assert response.status_code == 302
    visibility = {"csrf_token": owner_browser.token, "inbox.agents_see_all": "1"}
    assert owner_browser.client.post("/inbox/settings/visibility", data=visibility).status_code == 302
    with database.session() as session:
        assert session.scalar(select(CannedResponse.shortcut)) == "hours"
        assert settings.get(session, None, "inbox.agents_see_all") is True


def test_the_page_calls_are_documented_apart_from_the_public_api(owner_browser):
    api = owner_browser.get("/api/v1/openapi.json").get_json()
    assert not any(path.startswith("/inbox") for path in api["paths"])
    assert not {"SendText", "SetStatus", "ListQuery"} & set(api["components"]["schemas"])
    calls = owner_browser.get("/inbox/openapi.json").get_json()
    status = calls["paths"]["/inbox/c/{conversation_id}/status"]["post"]
    assert status["operationId"] == "inboxSetStatus"
    assert {"conversation_id"} == {p["name"] for p in status["parameters"] if p["in"] == "path"}
    listing = {p["name"] for p in calls["paths"]["/inbox/list"]["get"]["parameters"]}
    assert {"view", "status", "label", "unread", "before"} <= listing


def test_each_call_answers_what_its_declaration_says(app, owner_browser, database, fake_graph):
    """Every JSON answer parses as the model the page calls' document names, under the status it names."""
    documented = owner_browser.get("/inbox/openapi.json").get_json()["paths"]
    connect(app, fake_graph)
    conversation_id = customer_writes(database, "15557770031", "Any cake left?")
    with database.session() as session:
        message_id = session.scalar(select(Message.id).where(Message.conversation_id == conversation_id))
    c = f"/inbox/c/{conversation_id}"
    calls = [
        (f"{c}/send", {"text": "Yes"}, schemas.Queued),
        (f"{c}/react", {"message_id": message_id, "emoji": "👍"}, schemas.Queued),
        (f"{c}/read", None, schemas.MarkedRead),
        (f"{c}/notes", {"body": "regular"}, schemas.NoteAdded),
        (f"{c}/assign", {"assignee_id": "me"}, schemas.Assigned),
        (f"{c}/status", {"status": "snoozed", "snoozed_until": "2099-01-31T09:00:00Z"}, schemas.StatusSet),
        ("/inbox/labels", {"name": "VIP"}, schemas.LabelAdded),
        ("/inbox/canned", {"shortcut": "hours", "body": "9 to 5"}, schemas.CannedSaved),
        ("/inbox/settings/visibility", {"inbox.agents_see_all": True}, schemas.VisibilitySaved),
    ]
    answers = {}
    for path, body, model in calls:
        response = owner_browser.post(path, body)
        answers[path] = model.model_validate(response.get_json())
        declared = documented[re.sub(r"/c/\d+/", "/c/{conversation_id}/", path)]["post"]["responses"]
        schema = declared[str(response.status_code)]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith(f"/{model.__name__}"), (path, response.status_code)
    label_id, canned_id = answers["/inbox/labels"].id, answers["/inbox/canned"].id
    on = owner_browser.post(f"{c}/labels", {"label_id": label_id, "on": True})
    assert schemas.LabelSet.model_validate(on.get_json()).on is True
    listed = schemas.CannedList.model_validate(owner_browser.get("/inbox/canned?q=ho").get_json())
    assert [item.shortcut for item in listed.canned] == ["hours"]
    updated = owner_browser.post(f"/inbox/canned/{canned_id}", {"shortcut": "open", "body": "9 to 6"})
    assert schemas.CannedSaved.model_validate(updated.get_json()).shortcut == "open"
    for path in (f"/inbox/canned/{canned_id}/delete", f"/inbox/labels/{label_id}/delete"):
        assert schemas.Done.model_validate(owner_browser.post(path).get_json()).message


def test_an_attachment_without_a_file_is_400_naming_file(owner_browser, database):
    conversation_id = customer_writes(database, "15557770024", "hi")
    path = f"/inbox/c/{conversation_id}/attachment"
    headers = {"X-CSRFToken": owner_browser.token, **JSON}
    missing = owner_browser.client.post(
        path, data={"caption": "look"}, headers=headers, content_type="multipart/form-data"
    )
    assert missing.status_code == 400 and missing.get_json()["field"] == "file"
    nameless = owner_browser.client.post(
        path, data={"file": (io.BytesIO(b"%PDF-1.4"), "")}, headers=headers, content_type="multipart/form-data"
    )
    assert nameless.status_code == 400 and nameless.get_json()["field"] == "file"
    assert owner_browser.post(path, {"file": "x"}).get_json()["field"] == "body"


def test_assign_to_me_is_offered_only_while_the_conversation_is_not_mine(owner_browser, database):
    conversation_id = customer_writes(database, "15557770031", "hi")
    assert "Assign to me" in owner_browser.get(f"/inbox/c/{conversation_id}").get_data(as_text=True)
    assert owner_browser.post(f"/inbox/c/{conversation_id}/assign", {"assignee_id": "me"}).status_code == 200
    assert "Assign to me" not in owner_browser.get(f"/inbox/c/{conversation_id}").get_data(as_text=True)
    assert owner_browser.post(f"/inbox/c/{conversation_id}/assign", {"assignee_id": None}).status_code == 200
    assert "Assign to me" in owner_browser.get(f"/inbox/c/{conversation_id}").get_data(as_text=True)


def test_a_duplicate_label_posted_as_a_form_shows_the_settings_page_again_with_the_name_kept(owner_browser):
    form = {"csrf_token": owner_browser.token, "name": "wholesale"}
    assert owner_browser.client.post("/inbox/labels", data=form).status_code == 302
    response = owner_browser.client.post("/inbox/labels", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "There already is a label" in page and 'id="label-new-error"' in page
    assert 'name="name" value="wholesale"' in page and "Add canned response" in page
    json_answer = owner_browser.post("/inbox/labels", {"name": "wholesale"})
    assert json_answer.status_code == 409 and "already" in json_answer.get_json()["error"]


def test_a_duplicate_shortcut_posted_as_a_form_keeps_the_shortcut_and_text_typed(owner_browser):
    form = {"csrf_token": owner_browser.token, "shortcut": "hours", "body": "We open at 9."}
    assert owner_browser.client.post("/inbox/canned", data=form).status_code == 302
    response = owner_browser.client.post("/inbox/canned", data={**form, "body": "Open 9 to 5 & Sat"})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "/hours is already taken" in page and 'id="canned-new-error"' in page
    assert 'name="shortcut" value="hours"' in page and "Open 9 to 5 &amp; Sat</textarea>" in page
