"""A real `sigdesk serve` killed with SIGKILL in the middle of a campaign, then started again: nobody gets the
broadcast twice, nobody is left pending, a message claimed but not yet released to its call is sent after the
restart, and only the sends whose call had started at the kill (named in the release journal) are `unknown`
until Meta's status webhook (carrying our callback data) adopts them."""

from __future__ import annotations

import sys
from collections import Counter

import pytest
from sqlalchemy import func, select

from sigdesk.broadcasts.engine import JOURNAL_NAME
from sigdesk.db import Database, utcnow
from sigdesk.models import Message
from sigdesk.models.broadcast import Broadcast, BroadcastRecipient
from tests import factories
from tests.fakes.graph import PHONE_NUMBER_ID, TOKEN, WABA_ID
from tests.relay.processes import Desktop, until

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="kills the server with SIGKILL")

RECIPIENTS = 300
RATE = 150


def prepare(desktop: Desktop, graph_url: str, count: int, rate: int, **settings: str) -> int:
    """Settings through the CLI (the token is a secret), then the campaign written straight to the database,
    frozen and running, as start() leaves it."""
    desktop.cli("settings", "set", "whatsapp.access_token", "--stdin", input=TOKEN)
    desktop.cli("settings", "set", "whatsapp.app_secret", "--stdin", input=factories.APP_SECRET)
    values = {
        "whatsapp.phone_number_id": PHONE_NUMBER_ID,
        "whatsapp.waba_id": WABA_ID,
        "whatsapp.graph_base_url": graph_url,
        "whatsapp.throughput": "1000",
        "whatsapp.messaging_limit": "unlimited",
        **settings,
    }
    for key, value in values.items():
        desktop.cli("settings", "set", key, value)
    database = Database(desktop.db_url)
    try:
        with database.session() as session:
            template = factories.template(session, name="spring_sale", category="MARKETING", body="Hello {{1}}")
            people = [
                factories.contact(session, f"4477009{i:05d}", f"Customer {i}", marketing_consent="opted_in")
                for i in range(count)
            ]
            broadcast = factories.broadcast(
                session, of=template, to=people, status="running", rate_per_second=rate, started_at=utcnow()
            )
            for who in people:
                factories.recipient(session, broadcast, who)
            return broadcast.id
    finally:
        database.dispose()


def read(desktop: Desktop, broadcast_id: int):
    database = Database(desktop.db_url)
    try:
        with database.session(write=False) as session:
            status = session.scalar(select(Broadcast.status).where(Broadcast.id == broadcast_id))
            states = dict(
                session.execute(
                    select(BroadcastRecipient.state, func.count())
                    .where(BroadcastRecipient.broadcast_id == broadcast_id)
                    .group_by(BroadcastRecipient.state)
                ).all()
            )
            unknown_refs = set(
                session.scalars(
                    select(Message.client_ref)
                    .join(BroadcastRecipient, BroadcastRecipient.message_id == Message.id)
                    .where(BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.state == "unknown")
                )
            )
            return status, states, unknown_refs
    finally:
        database.dispose()


def at_the_kill(desktop: Desktop, broadcast_id: int) -> tuple[dict[int, str], set[int]]:
    """What the killed server left: each claimed message (no answer stored) by its number, and the ids its
    release journal names (handed to a call, so they may have reached Meta)."""
    database = Database(desktop.db_url)
    try:
        with database.session(write=False) as session:
            claimed = dict(
                session.execute(
                    select(Message.id, BroadcastRecipient.wa_id)
                    .join(BroadcastRecipient, BroadcastRecipient.message_id == Message.id)
                    .where(
                        BroadcastRecipient.broadcast_id == broadcast_id,
                        Message.status == "sending",
                        Message.wamid.is_(None),
                    )
                ).all()
            )
    finally:
        database.dispose()
    lines = (desktop.data_dir / JOURNAL_NAME).read_text().splitlines()
    return claimed, {int(line) for line in lines[1:]}


def test_a_campaign_killed_mid_run_resumes_without_sending_anyone_twice(tmp_path, monkeypatch, fake_graph):
    monkeypatch.delenv("SIGDESK_DATABASE_URL", raising=False)
    desktop = Desktop(tmp_path, "office")
    broadcast_id = prepare(desktop, fake_graph.url, RECIPIENTS, RATE)
    fake_graph.connect_webhook(f"{desktop.url}/webhooks/whatsapp", factories.APP_SECRET)
    try:
        desktop.process.start()
        until(lambda: len(fake_graph.sent) >= RECIPIENTS // 3, 30, "a third of the campaign to be sent", every=0.01)
        desktop.process.kill()
        at_kill = len(fake_graph.sent)
        assert at_kill < RECIPIENTS, "the campaign finished before the kill; slow it down"
        claimed, released = at_the_kill(desktop, broadcast_id)
        reached_at_kill = {body["to"] for body in fake_graph.sent}
        never_left = {wa_id for message_id, wa_id in claimed.items() if message_id not in released}
        assert not never_left & reached_at_kill, "a message reached Meta without being in the journal first"

        desktop.process.start()
        status, states, unknown_refs = until(
            lambda: (found := read(desktop, broadcast_id))[0] == "completed" and found, 60, "the campaign to complete"
        )
        per_number = Counter(body["to"] for body in fake_graph.sent)
        assert max(per_number.values()) == 1, "someone got the broadcast twice"
        assert set(states) <= {"sent", "unknown"} and sum(states.values()) == RECIPIENTS
        reached = {body["biz_opaque_callback_data"] for body in fake_graph.sent}
        # every recipient either reached Meta once or was in flight at the kill and never left
        assert len(per_number) + len(unknown_refs - reached) == RECIPIENTS
        # claimed ahead of its token but not released when killed: sent after the restart, never unknown
        assert all(per_number[wa_id] == 1 for wa_id in never_left)
        # unknown only if Meta got it, or its call had started (the journal names it) and it may have
        unknown_numbers = unknown_numbers_of(desktop, broadcast_id)
        may_have = {wa_id for message_id, wa_id in claimed.items() if message_id in released}
        assert unknown_numbers <= set(per_number) | may_have

        # Meta reports what it got, with our callback data: the in-flight ones that did reach it are adopted
        for wamid, body in zip(list(fake_graph.recipients), list(fake_graph.sent)):
            if body["biz_opaque_callback_data"] in unknown_refs:
                response = fake_graph.send_status(wamid, "delivered", biz_opaque=body["biz_opaque_callback_data"])
                assert response.status_code == 200
        _, after, still_unknown = until(
            lambda: not ((found := read(desktop, broadcast_id))[2] & reached) and found, 30, "the adoptions"
        )
    finally:
        desktop.process.stop()
    assert still_unknown == unknown_refs - reached
    assert after.get("unknown", 0) == len(unknown_refs - reached)
    assert after.get("delivered", 0) == len(unknown_refs & reached)
    print(
        f"kill after {at_kill} sends: {states}; claimed at the kill {len(claimed)}, of which released "
        f"{len(claimed) - len(never_left)}; adopted {len(unknown_refs & reached)}"
    )


def unknown_numbers_of(desktop: Desktop, broadcast_id: int) -> set[str]:
    database = Database(desktop.db_url)
    try:
        with database.session(write=False) as session:
            return set(
                session.scalars(
                    select(BroadcastRecipient.wa_id).where(
                        BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.state == "unknown"
                    )
                )
            )
    finally:
        database.dispose()
