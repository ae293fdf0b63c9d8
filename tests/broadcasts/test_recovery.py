"""Start-up recovery from the release journal: a claimed message the journal names may have reached Meta and
its recipient is `unknown`; one it does not name never left and is sent after the restart; a journal that is
missing, torn or from an earlier boot of the machine is not trusted, so every claimed message is `unknown`."""

from __future__ import annotations

import os
import stat
import sys
import threading

import pytest
from sqlalchemy import select

from sigdesk.broadcasts import commands
from sigdesk.broadcasts.engine import JOURNAL_NAME, boot_id
from sigdesk.models import Message
from sigdesk.outbound import services as outbound
from tests.broadcasts.campaigns import admin
from tests.broadcasts.test_engine import campaign, engine_for, number, recipient_of, sent_to, states
from tests.waiting import wait_for

HEADER = f"sigdesk broadcasts journal; boot {boot_id()}\n"


def killed_after_claiming(app, fake_graph, count: int = 4) -> tuple[int, list[int]]:
    """A campaign whose first `count` messages were claimed when SigDesk was killed (no answer stored)."""
    broadcast_id = campaign(app, fake_graph, count=count)
    engine = engine_for(app)
    engine.housekeep()
    run = engine.runs[broadcast_id]
    engine._prepare(run)
    with app.extensions["sigdesk"].database.session() as session:
        claimed = [item.id for item in outbound.claim(session, list(run.ready))]
    assert len(claimed) == count
    return broadcast_id, claimed


def restart(app, journal) -> int:
    """What a start does first: the engine's recovery, committed."""
    with app.extensions["sigdesk"].database.session() as session:
        assert outbound.recover_interrupted(session) == 0  # broadcast messages are the engine's
        return engine_for(app, journal=journal).recover(session)


def message_status(app, message_id: int) -> str:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(Message.status).where(Message.id == message_id))


def run_engine_until_complete(app, journal, broadcast_id: int) -> None:
    """The worker's loop, as `sigdesk serve` runs it: recovery, then sending, until the campaign is done."""
    engine = engine_for(app, journal=journal)
    stop = threading.Event()
    thread = threading.Thread(target=engine.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: not {"pending", "sending"} & set(states(app, broadcast_id)), 20)
    finally:
        stop.set()
        engine.interrupt()
        thread.join(10)


@pytest.mark.database
def test_a_message_in_the_journal_is_unknown_and_one_not_in_it_is_sent_after_the_restart(app, fake_graph, tmp_path):
    broadcast_id, claimed = killed_after_claiming(app, fake_graph)
    journal = tmp_path / JOURNAL_NAME
    journal.write_text(HEADER + "".join(f"{message_id}\n" for message_id in claimed[:2]))

    assert restart(app, journal) == 2
    assert [recipient_of(app, broadcast_id, number(i)).state for i in range(4)] == [
        "unknown",
        "unknown",
        "sending",
        "sending",
    ]
    assert [message_status(app, message_id) for message_id in claimed] == ["failed", "failed", "queued", "queued"]

    run_engine_until_complete(app, journal, broadcast_id)
    assert sent_to(fake_graph) == {number(2): 1, number(3): 1}  # the two that never left, once each
    assert states(app, broadcast_id) == {"unknown": 2, "sent": 2}
    # emptied at the start, then the two releases of this run were written before their calls
    assert journal.read_text() == HEADER + "".join(f"{message_id}\n" for message_id in claimed[2:])
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600


@pytest.mark.database
def test_without_a_journal_every_claimed_message_is_unknown_and_none_is_sent(app, fake_graph, tmp_path):
    broadcast_id, _ = killed_after_claiming(app, fake_graph)
    journal = tmp_path / JOURNAL_NAME

    assert restart(app, journal) == 4
    run_engine_until_complete(app, journal, broadcast_id)
    assert fake_graph.sent == []
    assert states(app, broadcast_id) == {"unknown": 4}


@pytest.mark.parametrize(
    "contents",
    [
        pytest.param("", id="empty"),
        pytest.param("", id="unreadable"),
        pytest.param("sigdesk broadcasts journal; boot id another-boot\n", id="from an earlier boot"),
        pytest.param(HEADER + "1\n2", id="torn last line"),
        pytest.param(HEADER + "1\nnot an id\n", id="garbled"),
        pytest.param("1\n2\n", id="no header"),
    ],
)
def test_a_journal_that_cannot_be_trusted_counts_as_missing(app, fake_graph, tmp_path, request, contents):
    broadcast_id, _ = killed_after_claiming(app, fake_graph, count=2)
    journal = tmp_path / JOURNAL_NAME
    if request.node.callspec.id == "unreadable":
        journal.mkdir()  # a directory where the file should be: reading it fails
    else:
        journal.write_text(contents)

    assert restart(app, journal) == 2
    assert states(app, broadcast_id) == {"unknown": 2}


def test_a_cancelled_campaigns_message_that_never_left_is_withdrawn_not_sent(app, fake_graph, tmp_path):
    broadcast_id, claimed = killed_after_claiming(app, fake_graph, count=2)
    with app.extensions["sigdesk"].database.session() as session:
        commands.cancel(session, admin(session), broadcast_id)  # while SigDesk was down, from the CLI
    journal = tmp_path / JOURNAL_NAME
    journal.write_text(HEADER + f"{claimed[0]}\n")

    assert restart(app, journal) == 1
    assert recipient_of(app, broadcast_id, number(0)).state == "unknown"
    assert recipient_of(app, broadcast_id, number(1)).state == "skipped"
    assert message_status(app, claimed[1]) == "failed"  # withdrawn, as cancel() withdraws queued messages
