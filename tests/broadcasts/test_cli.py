"""`sigdesk broadcasts ...` and `sigdesk templates sync`: the same commands as the pages and the API (same
audit entries and events), refusals in words with exit 1, and `watch` following a campaign to its end."""

from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from sigdesk.broadcasts import commands
from sigdesk.cli import main
from sigdesk.models import Template
from sigdesk.models.broadcast import BroadcastRecipient
from tests import factories
from tests.broadcasts.campaigns import admin, customer, data, hello
from tests.commanding import audit, cli, events

pytestmark = pytest.mark.database


def failing(app, *args: str):
    config = app.extensions["sigdesk"].config
    result = CliRunner().invoke(
        main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args]
    )
    assert result.exit_code == 1, result.output
    return result.output


def _draft(app, people: int = 2) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        contacts = [customer(session, display_name=f"Customer {n}") for n in range(people)]
        made = commands.create(session, admin(session), data(hello(session), {"contact_ids": [c.id for c in contacts]}))
        return made.id


def test_start_pause_resume_and_cancel_from_the_command_line_are_the_commands(app):
    broadcast_id = _draft(app)
    assert "is running" in cli(app, "broadcasts", "start", str(broadcast_id)).output
    assert "is paused" in cli(app, "broadcasts", "pause", str(broadcast_id)).output
    assert "is running" in cli(app, "broadcasts", "resume", str(broadcast_id)).output
    assert "is cancelled" in cli(app, "broadcasts", "cancel", str(broadcast_id)).output
    changes = [event["change"] for event in events(app, "broadcast.changed")]
    assert changes == ["created", "started", "paused", "resumed", "cancelled"]
    assert [entry.channel for entry in audit(app, "broadcast.started")] == ["cli"]


def test_refusals_are_one_line_and_exit_1(app):
    broadcast_id = _draft(app)
    cli(app, "broadcasts", "start", str(broadcast_id))
    assert "already running" in failing(app, "broadcasts", "start", str(broadcast_id))
    assert "There is no broadcast 999" in failing(app, "broadcasts", "pause", "999")
    assert "Traceback" not in failing(app, "broadcasts", "resume", str(broadcast_id))


@pytest.mark.parametrize("verb", ["show", "start", "pause", "resume", "cancel", "watch"])
def test_a_negative_or_zero_id_is_a_range_error_not_an_unknown_option(app, verb):
    config = app.extensions["sigdesk"].config
    for given in ("-1", "0"):
        result = CliRunner().invoke(
            main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, "broadcasts", verb, given]
        )
        assert result.exit_code == 2, result.output
        assert "No such option" not in result.output
        assert f"{given} is not in the range x>=1" in result.output


def test_list_and_show_give_the_status_and_the_counts(app):
    broadcast_id = _draft(app, 3)
    assert "No broadcasts" not in cli(app, "broadcasts", "list").output
    draft = cli(app, "broadcasts", "show", str(broadcast_id)).output
    assert "Will send: 3, in about 1 s" in draft and "Messaging limit: 1% of 250" in draft
    cli(app, "broadcasts", "start", str(broadcast_id))
    listed = cli(app, "broadcasts", "list").output
    assert "running" in listed and "December batch" in listed
    shown = cli(app, "broadcasts", "show", str(broadcast_id)).output
    assert "Status: running" in shown and "Recipients: 3" in shown
    assert "  pending    3" in shown and "  unknown    0" in shown


def test_watch_prints_progress_until_the_campaign_is_done(app):
    broadcast_id = _draft(app, 2)
    cli(app, "broadcasts", "start", str(broadcast_id))
    database = app.extensions["sigdesk"].database

    def engine_stand_in() -> None:
        time.sleep(1.5)  # long enough for `watch` to start and print the first line on a busy machine
        with database.session() as session:
            session.execute(
                update(BroadcastRecipient)
                .where(BroadcastRecipient.broadcast_id == broadcast_id)
                .values(state="delivered")
            )
        time.sleep(0.3)
        with database.session() as session:
            commands.complete(session, broadcast_id)

    helper = threading.Thread(target=engine_stand_in)
    helper.start()
    output = cli(app, "broadcasts", "watch", str(broadcast_id), "--interval", "0.05", "--timeout", "20").output
    helper.join()
    lines = output.strip().splitlines()
    assert lines[0].startswith("running: 0 sent") and "2 to go of 2" in lines[0]
    assert lines[-1].startswith("completed: 2 sent (2 delivered")


def test_watch_gives_up_at_its_timeout(app):
    broadcast_id = _draft(app, 1)
    assert "still draft" in failing(
        app, "broadcasts", "watch", str(broadcast_id), "--interval", "0.05", "--timeout", "0.2"
    )


def test_templates_sync_does_what_the_templates_page_does(app, fake_graph):
    with app.extensions["sigdesk"].database.session() as session:
        factories.whatsapp_connection(session, app.extensions["sigdesk"].cipher, fake_graph.url)
        factories.template(session, name="old_one", language="en_US")
    fake_graph.templates = [
        {
            "id": "1",
            "name": "winter_sale",
            "language": "de",
            "status": "APPROVED",
            "category": "MARKETING",
            "components": [{"type": "BODY", "text": "Hallo {{1}}"}],
        },
        {"id": "2", "name": "welcome", "language": "en_US", "status": "PENDING", "category": "UTILITY"},
    ]
    assert "2 templates synced from Meta (1 approved)" in cli(app, "templates", "sync").output
    with app.extensions["sigdesk"].database.session() as session:
        stored = {(row.name, row.status) for row in session.query(Template)}
    assert stored == {("winter_sale", "APPROVED"), ("welcome", "PENDING"), ("old_one", "DELETED")}
    assert [entry.detail["count"] for entry in audit(app, "templates.synced")] == [2]


def test_templates_sync_says_why_it_cannot(app, fake_graph):
    assert "not connected yet" in failing(app, "templates", "sync")
    with app.extensions["sigdesk"].database.session() as session:
        factories.whatsapp_connection(session, app.extensions["sigdesk"].cipher, fake_graph.url)
    fake_graph.expire_token()
    assert "Traceback" not in failing(app, "templates", "sync")
