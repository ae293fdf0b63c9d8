"""Each conversation command has one implementation: the inbox page and the API leave the same audit entry,
activity note and event behind, and both are seen live by open inboxes."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from sigdesk.auth import services as accounts
from sigdesk.db import utcnow
from sigdesk.models import ApiToken, AuditEvent, Message, Note, OutboxEvent
from sigdesk.settings import services as settings
from tests.inbox.helpers import customer_writes, user_id

pytestmark = pytest.mark.database


class Inbox:
    """The inbox page's JSON calls, with the session cookie and the page's CSRF token."""

    channel = "web"

    def __init__(self, client) -> None:
        self.client = client
        page = client.get("/inbox/").get_data(as_text=True)
        self.token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def post(self, path: str, body: dict):
        return self.client.post(f"/inbox/c/{path}", json=body, headers={"X-CSRFToken": self.token})

    def send(self, cid, text):
        return self.post(f"{cid}/send", {"text": text})

    def retry(self, cid, mid):
        return self.client.post(
            f"/api/v1/conversations/{cid}/messages/{mid}/retry", headers={"X-CSRFToken": self.token}
        )

    def read(self, cid):
        return self.post(f"{cid}/read", {})

    def note(self, cid, text):
        return self.post(f"{cid}/notes", {"body": text})

    def assign(self, cid, who):
        return self.post(f"{cid}/assign", {"assignee_id": who})

    def status(self, cid, status, until=None):
        return self.post(f"{cid}/status", {"status": status, "snoozed_until": until})

    def label(self, cid, label_id, on):
        return self.post(f"{cid}/labels", {"label_id": label_id, "on": on})


class Api:
    """The REST API with a personal token, as an integration would call it."""

    channel = "api"

    def __init__(self, client, token) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: dict | None = None):
        return self.client.post(f"/api/v1/conversations/{path}", json=body or {}, headers=self.headers)

    def send(self, cid, text):
        return self.post(f"{cid}/messages", {"text": text})

    def retry(self, cid, mid):
        return self.post(f"{cid}/messages/{mid}/retry")

    def read(self, cid):
        return self.post(f"{cid}/read")

    def note(self, cid, text):
        return self.post(f"{cid}/notes", {"body": text})

    def assign(self, cid, who):
        return self.post(f"{cid}/assign", {"assignee_id": who})

    def status(self, cid, status, until=None):
        return self.post(f"{cid}/status", {"status": status, "snoozed_until": until})

    def label(self, cid, label_id, on):
        return self.post(f"{cid}/labels", {"label_id": label_id, "on": on})


@pytest.fixture(params=["inbox", "api"])
def door(request, app, owner, client):
    if request.param == "inbox":
        return Inbox(client)
    with app.extensions["sigdesk"].database.session() as session:
        token = accounts.create_api_token(session, accounts.find_user(session, owner.email), "commands")
        door = Api(app.test_client(), token)
        door.token_id = session.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()).limit(1))
    return door


@pytest.fixture
def conversation(app):
    return customer_writes(app.extensions["sigdesk"].database, "15550009999", "Is my cake ready?")


def since(database, model, after: int):
    with database.session() as session:
        return list(session.scalars(select(model).where(model.id > after).order_by(model.id)))


def last_id(database, model) -> int:
    with database.session() as session:
        return session.scalar(select(model.id).order_by(model.id.desc()).limit(1)) or 0


class Trail:
    """What an action left behind: audit entries, activity notes, outbox events and live events."""

    def __init__(self, app) -> None:
        self.database = app.extensions["sigdesk"].database
        self.marks = {model: last_id(self.database, model) for model in (AuditEvent, Note, OutboxEvent)}
        self.stream = app.extensions["sigdesk"].events.subscribe()

    def audit(self):
        return [
            (row.action, row.target, row.actor_email, row.channel, json.loads(row.detail or "{}"))
            for row in since(self.database, AuditEvent, self.marks[AuditEvent])
        ]

    def notes(self):
        return [(row.kind, row.body) for row in since(self.database, Note, self.marks[Note])]

    def events(self):
        return [
            (row.name, json.loads(row.payload)) for row in since(self.database, OutboxEvent, self.marks[OutboxEvent])
        ]

    def live(self):
        return [(event.kind, event.conversation_id, event.data) for event in self.stream.get(timeout=1)]


def test_sending_queues_once_and_leaves_the_same_trail_from_every_door(app, door, conversation, owner):
    trail = Trail(app)
    response = door.send(conversation, "Yes, ready at 5")
    assert response.status_code == 202, response.get_data(as_text=True)
    with trail.database.session() as session:
        message = session.scalar(
            select(Message).where(Message.conversation_id == conversation, Message.direction == "out")
        )
    assert trail.audit() == [
        (
            "message.queue",
            f"conversation:{conversation}",
            owner.email,
            door.channel,
            {
                "message_id": message.id,
                "type": "text",
                **({"token_id": door.token_id} if door.channel == "api" else {}),
            },
        )
    ]
    assert trail.events() == [
        (
            "message.queued",
            {
                "conversation_id": conversation,
                "assignee_id": None,
                "message_id": message.id,
                "type": "text",
                "author_id": user_id(trail.database, owner.email),
            },
        )
    ]
    assert trail.notes() == []
    assert trail.live() == [("message.created", conversation, {"message_id": message.id})]


def test_a_refused_send_leaves_no_trail(app, door, conversation):
    with app.extensions["sigdesk"].database.session() as session:
        session.get_bind()
        from sigdesk.models import Conversation

        session.get(Conversation, conversation).last_inbound_at = utcnow() - timedelta(days=2)
    trail = Trail(app)
    response = door.send(conversation, "Hello again")
    assert response.status_code == 422 and "24" in response.get_json()["error"]
    assert (trail.audit(), trail.events(), trail.notes()) == ([], [], [])
    assert trail.stream.get(timeout=0.2) == []


def test_reading_clears_the_count_and_is_announced_from_every_door(app, door, conversation):
    trail = Trail(app)
    assert door.read(conversation).status_code == 200
    assert [name for name, _ in trail.events()] == ["conversation.read"]
    assert trail.live() == [("conversation.updated", conversation, {})]


def test_retrying_a_failed_message_from_every_door(app, door, conversation, owner):
    with app.extensions["sigdesk"].database.session() as session:
        from sigdesk.conversations import commands
        from sigdesk.actor import Actor

        failed = commands.send(session, Actor.system("worker"), conversation, "text", {"body": "Hi"})
        failed.status = "failed"
        session.flush()
        failed_id = failed.id
    trail = Trail(app)
    assert door.retry(conversation, failed_id).status_code == 202
    assert [row[:4] for row in trail.audit()] == [
        ("message.retry", f"conversation:{conversation}", owner.email, door.channel)
    ]
    assert trail.events() == [
        ("message.retried", {"conversation_id": conversation, "assignee_id": None, "message_id": failed_id})
    ]
    assert trail.live() == [("message.updated", conversation, {"message_id": failed_id})]


def test_a_snooze_note_names_the_time_on_the_business_clock(app, client, conversation, owner):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "general.timezone", "Europe/Berlin")
    trail = Trail(app)
    response = Inbox(client).status(conversation, "snoozed", "2030-07-01T20:34:00+00:00")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert trail.notes() == [("activity", f"{owner.name} snoozed this until 2030-07-01 22:34.")]
