"""GET /events through a real waitress server: delivery, catch-up, who receives what, limits, shutdown."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time

import httpx
import pytest

from sigdesk.server import ServerThread
from tests.conftest import csrf_from


class Stream:
    """An EventSource stand-in: reads the stream on a thread and hands over each block it parses."""

    def __init__(self, client: httpx.Client, url: str, last_event_id: str | None = None) -> None:
        self.blocks: queue.Queue = queue.Queue()
        self.ended = threading.Event()
        self._closed = False
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self._context = client.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=30))
        self.response = self._context.__enter__()
        if self.response.status_code == 200:
            threading.Thread(target=self._read, daemon=True).start()
            self.opening = self.block()

    def _read(self) -> None:
        block: dict = {}
        try:
            for line in self.response.iter_lines():
                if line == "":
                    if block:
                        self.blocks.put(block)
                    block = {}
                    continue
                field, _, value = line.partition(":")
                block.setdefault(field, value.removeprefix(" "))
        except (httpx.HTTPError, RuntimeError, OSError):
            pass  # closed by the test or the server
        finally:
            self.ended.set()

    def block(self, timeout: float = 5) -> dict:
        return self.blocks.get(timeout=timeout)

    def events(self, count: int, timeout: float = 5) -> list[tuple[str, dict]]:
        found = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            block = self.block(max(0.01, deadline - time.monotonic()))
            if "event" in block:
                found.append((block["event"], json.loads(block["data"]), block.get("id")))
        return [(kind, data) for kind, data, _id in found]

    def nothing_more(self, wait: float = 0.5) -> bool:
        try:
            block = self.blocks.get(timeout=wait)
        except queue.Empty:
            return True
        return "event" not in block

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._context.__exit__(None, None, None)
        except (httpx.HTTPError, OSError):
            pass  # the reader thread was still using the connection


def signed_in(server: ServerThread, person) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=10)
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"email": person.email, "password": person.password, "csrf_token": token})
    assert response.status_code == 302, response.text
    return client


@pytest.fixture
def bus(app):
    return app.extensions["sigdesk"].events


@pytest.fixture
def people(app, auth):
    owner = auth.setup_owner()
    return {
        "owner": owner,
        "admin": auth.create_user("admin"),
        "ann": auth.create_user("agent"),
        "bob": auth.create_user("agent"),
    }


def user_id(app, person) -> int:
    from sqlalchemy import select

    from sigdesk.models import User

    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(User.id).where(User.email == person.email))


@pytest.fixture
def open_stream(people, live_server):
    opened: list[Stream] = []
    clients: list[httpx.Client] = []

    def open_(who: str, last_event_id: str | None = None, path: str = "/events") -> Stream:
        client = signed_in(live_server, people[who])
        clients.append(client)
        stream = Stream(client, path, last_event_id)
        opened.append(stream)
        return stream

    yield open_
    for stream in opened:
        stream.close()
    for client in clients:
        client.close()


def test_an_event_published_after_connecting_arrives_within_a_second(open_stream, bus):
    stream = open_stream("owner")
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    started = time.monotonic()
    event = bus.publish("message.created", 4, None, message_id=17)
    assert stream.events(1) == [("message.created", {"conversation_id": 4, "message_id": 17})]
    assert time.monotonic() - started < 1
    assert event.id.startswith(bus.epoch)


def test_the_stream_is_not_cached_or_buffered_and_says_how_to_retry(open_stream):
    stream = open_stream("owner")
    assert "no-cache" in stream.response.headers["cache-control"]
    assert stream.response.headers["x-accel-buffering"] == "no"
    assert stream.opening["retry"].isdigit() and stream.opening["id"]


def test_a_reconnect_with_last_event_id_catches_up_what_was_missed(open_stream, bus):
    stream = open_stream("owner")
    bus.publish("message.created", 1, None, message_id=1)
    kind, _data, seen = next((b["event"], b["data"], b["id"]) for b in iter(stream.block, None) if "event" in b)
    stream.close()
    bus.publish("message.updated", 1, None, message_id=1)
    bus.publish("note.created", 1, None, note_id=5)
    again = open_stream("owner", last_event_id=seen)
    assert again.events(2) == [
        ("message.updated", {"conversation_id": 1, "message_id": 1}),
        ("note.created", {"conversation_id": 1, "note_id": 5}),
    ]


def test_the_last_event_id_can_come_in_the_query_string(open_stream, bus):
    seen = bus.publish("message.created", 1, None, message_id=1).id
    bus.publish("message.created", 1, None, message_id=2)
    stream = open_stream("owner", path=f"/events?last_event_id={seen}")
    assert stream.events(1) == [("message.created", {"conversation_id": 1, "message_id": 2})]


def test_an_id_from_before_a_restart_gets_a_resync(open_stream, bus):
    stream = open_stream("owner", last_event_id="0badc0de-12")
    assert stream.opening["event"] == "resync"
    bus.publish("message.created", 1, None, message_id=3)
    assert stream.events(1) == [("message.created", {"conversation_id": 1, "message_id": 3})]


def test_an_agent_receives_their_own_and_unassigned_conversations_only(app, open_stream, bus, people):
    ann, bob = user_id(app, people["ann"]), user_id(app, people["bob"])
    stream = open_stream("ann")
    bus.publish("message.created", 1, bob, message_id=1)
    bus.publish("message.created", 2, ann, message_id=2)
    bus.publish("message.created", 3, None, message_id=3)
    bus.publish("note.created", 1, bob, note_id=4)
    assert stream.events(2) == [
        ("message.created", {"conversation_id": 2, "message_id": 2}),
        ("message.created", {"conversation_id": 3, "message_id": 3}),
    ]
    assert stream.nothing_more()


def test_admins_and_owners_receive_every_conversation(app, open_stream, bus, people):
    bob = user_id(app, people["bob"])
    streams = [open_stream("admin"), open_stream("owner")]
    bus.publish("message.created", 1, bob, message_id=1)
    for stream in streams:
        assert stream.events(1) == [("message.created", {"conversation_id": 1, "message_id": 1})]


def test_the_setting_that_widens_what_agents_see_applies_to_new_streams(app, open_stream, bus, people):
    from sigdesk.conversations.services import AGENTS_SEE_ALL
    from sigdesk.settings import services as settings

    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_value(session, state.cipher, AGENTS_SEE_ALL, "true")
    stream = open_stream("ann")
    bus.publish("message.created", 1, user_id(app, people["bob"]), message_id=1)
    assert stream.events(1) == [("message.created", {"conversation_id": 1, "message_id": 1})]


def test_a_conversation_taken_away_from_an_agent_tells_them_it_changed(app, open_stream, bus, people):
    ann, bob = user_id(app, people["ann"]), user_id(app, people["bob"])
    stream = open_stream("ann")
    bus.publish("conversation.updated", 1, bob, previous_assignee_ids=(ann,))
    assert stream.events(1) == [("conversation.updated", {"conversation_id": 1})]


def test_a_filtered_out_event_still_moves_the_agents_position_with_the_heartbeat(app, open_stream, bus, people):
    app.config["SIGDESK_EVENTS_HEARTBEAT"] = 0.3
    stream = open_stream("ann")
    hidden = bus.publish("message.created", 1, user_id(app, people["bob"]), message_id=1)
    block = stream.block()
    assert block.get("id") == hidden.id and "event" not in block


def test_a_heartbeat_keeps_an_idle_stream_alive(app, open_stream):
    app.config["SIGDESK_EVENTS_HEARTBEAT"] = 0.2
    stream = open_stream("owner")
    assert stream.block(timeout=3) == {"": "ping"}


def test_a_stream_ends_after_its_maximum_age_so_the_browser_reconnects(app, open_stream):
    app.config["SIGDESK_EVENTS_MAX_AGE"] = 0.5
    stream = open_stream("owner")
    assert stream.ended.wait(5)


def test_signed_out_visitors_get_no_stream(people, live_server):
    response = httpx.get(f"{live_server.url}/events")
    assert response.status_code == 302 and "/login" in response.headers["location"]


def test_beyond_the_stream_limit_the_server_answers_503_and_keeps_serving(app, open_stream, live_server):
    app.config["SIGDESK_MAX_EVENT_STREAMS"] = 2
    open_stream("owner"), open_stream("admin")
    third = open_stream("ann")
    assert third.response.status_code == 503
    assert third.response.headers["retry-after"].isdigit()
    assert "Too many live-update connections" in third.response.read().decode()
    assert httpx.get(f"{live_server.url}/healthz").status_code == 200


def test_a_closed_tab_frees_its_place_promptly(app, people, live_server, open_stream, bus):
    """Noticed without waiting for the next heartbeat write (a browser closing a tab just closes the socket)."""
    app.config["SIGDESK_MAX_EVENT_STREAMS"] = 1
    client = signed_in(live_server, people["owner"])
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    with socket.create_connection((live_server.host, live_server.port), timeout=5) as tab:
        tab.sendall(f"GET /events HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n".encode())
        assert b"200 OK" in tab.recv(4096)
        assert bus.subscriber_count == 1
        tab.shutdown(socket.SHUT_RDWR)
    client.close()
    deadline = time.monotonic() + 5
    while bus.subscriber_count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bus.subscriber_count == 0
    assert open_stream("owner").response.status_code == 200


def test_stopping_the_server_ends_open_streams_without_hanging(app, people):
    server = ServerThread(app).start()
    clients = [signed_in(server, people[who]) for who in ("owner", "admin", "ann")]
    streams = [Stream(client, "/events") for client in clients]
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5
    for stream in streams:
        assert stream.ended.wait(5)
        stream.close()
    for client in clients:
        client.close()


def test_a_message_sent_through_the_api_appears_live_in_an_open_inbox(app, people, live_server, open_stream):
    """The API and the inbox page send through one command, so an integration's message shows at once."""
    from sigdesk.auth.services import find_user
    from tests.factories import api_token
    from tests.inbox.helpers import customer_writes

    database = app.extensions["sigdesk"].database
    stream = open_stream("ann")
    conversation_id = customer_writes(database, "15550004321", "Can I order a cake?")
    with database.session() as session:
        token = api_token(session, find_user(session, people["owner"].email))
    response = httpx.post(
        f"{live_server.url}/api/v1/conversations/{conversation_id}/messages",
        json={"text": "Of course!"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 202, response.text
    assert stream.events(1) == [
        ("message.created", {"conversation_id": conversation_id, "message_id": response.json()["id"]})
    ]


def test_one_user_cannot_hold_every_stream(app, open_stream, people, live_server):
    from sigdesk.live.views import user_streams

    app.config["SIGDESK_MAX_EVENT_STREAMS_PER_USER"] = 2
    client = signed_in(live_server, people["ann"])
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    with socket.create_connection((live_server.host, live_server.port), timeout=5) as tab:
        tab.sendall(f"GET /events HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n".encode())
        assert b"200 OK" in tab.recv(4096)
        assert open_stream("ann").response.status_code == 200
        third = open_stream("ann")
        assert third.response.status_code == 503
        assert third.response.headers["retry-after"].isdigit()
        assert "too many SigDesk windows" in third.response.read().decode()
        assert open_stream("bob").response.status_code == 200  # others still get theirs
        tab.shutdown(socket.SHUT_RDWR)
    client.close()
    held, ann = user_streams(app), user_id(app, people["ann"])
    deadline = time.monotonic() + 5
    while held.count(ann) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_stream("ann").response.status_code == 200  # a closed tab gives its place back


def _change(app, email: str, change) -> None:
    from sigdesk.actor import Actor
    from sigdesk.auth.services import find_user

    with app.extensions["sigdesk"].database.session() as session:
        change(session, Actor.system("cli"), find_user(session, email))


def _ends_with_resync(stream) -> bool:
    assert stream.ended.wait(5), "the stream stayed open"
    blocks = []
    while not stream.blocks.empty():
        blocks.append(stream.blocks.get())
    return any(block.get("event") == "resync" and "access changed" in block.get("data", "") for block in blocks)


def test_a_stream_ends_at_the_next_heartbeat_after_its_user_is_deactivated(app, open_stream, people):
    from sigdesk.auth.services import set_active

    app.config["SIGDESK_EVENTS_HEARTBEAT"] = 0.3
    stream = open_stream("ann")
    assert stream.block(timeout=3) == {"": "ping"}
    _change(app, people["ann"].email, lambda session, actor, user: set_active(session, actor, user, False))
    assert _ends_with_resync(stream)


def test_a_stream_ends_at_the_next_heartbeat_after_its_user_is_demoted(app, open_stream, people):
    from sigdesk.auth.services import change_role

    app.config["SIGDESK_EVENTS_HEARTBEAT"] = 0.3
    stream = open_stream("admin")
    _change(app, people["admin"].email, lambda session, actor, user: change_role(session, actor, user, "agent"))
    assert _ends_with_resync(stream)


def test_a_stream_ends_at_the_next_heartbeat_after_its_session_is_signed_out(app, people, live_server):
    app.config["SIGDESK_EVENTS_HEARTBEAT"] = 0.3
    client = signed_in(live_server, people["bob"])
    stream = Stream(client, "/events")
    try:
        token = csrf_from(client.get("/account/").text)
        assert client.post("/logout", data={"csrf_token": token}).status_code == 302
        assert _ends_with_resync(stream)
    finally:
        stream.close()
        client.close()


def test_a_stream_of_a_user_who_is_unchanged_stays_open_across_heartbeats(app, open_stream):
    app.config["SIGDESK_EVENTS_HEARTBEAT"] = 0.2
    stream = open_stream("bob")
    assert [stream.block(timeout=3) for _ in range(3)] == [{"": "ping"}] * 3
    assert not stream.ended.is_set()


def test_a_stream_ends_at_the_next_heartbeat_after_agents_stop_seeing_every_conversation(app, open_stream):
    from sigdesk.conversations.services import AGENTS_SEE_ALL
    from sigdesk.settings import services as settings

    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_value(session, state.cipher, AGENTS_SEE_ALL, True)
    app.config["SIGDESK_EVENTS_HEARTBEAT"] = 0.3
    stream = open_stream("ann")
    with state.database.session() as session:
        settings.set_value(session, state.cipher, AGENTS_SEE_ALL, False)
    assert _ends_with_resync(stream)  # the browser reconnects as an agent who sees their own only
