"""Tags and lifecycle stages through their commands: the rules, the audit trail and the events after commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from sigdesk.actor import Actor
from sigdesk.errors import Conflict, NotFound, UserError
from sigdesk.lifecycle import commands, services
from sigdesk.models import ContactStage, ContactTag, StageChange, Tag
from tests import factories
from tests.commanding import audit, events
from tests.lifecycle.helpers import actor, clear_stages, stage, tag

pytestmark = pytest.mark.database


@pytest.fixture
def database(app):
    """The app's database without the default stages (MariaDB runs empty every table between tests anyway)."""
    database = app.extensions["sigdesk"].database
    clear_stages(database)
    return database


# --- tags ----------------------------------------------------------------------------------------


def test_an_admin_creates_a_tag_audited_and_announced_after_commit(app, database):
    with database.session() as session:
        admin = actor(session)
        made = commands.create_tag(session, admin, "  VIP ", 3)
        assert (made.name, made.color) == ("VIP", 3)
        session.commit()
        tag_id, email = made.id, admin.user.email
    assert events(app, "tag.changed") == [{"tag_id": tag_id, "change": "created"}]
    [entry] = audit(app, "tag.create")
    assert (entry.target, entry.actor, entry.channel, entry.detail) == (
        f"tag {tag_id}",
        email,
        "cli",
        {"name": "VIP", "color": 3},
    )


def test_a_rolled_back_tag_is_never_announced(app, database):
    with database.session() as session:
        commands.create_tag(session, actor(session), "Wholesale")
        session.rollback()
    assert events(app, "tag.changed") == []


def test_tag_names_are_unique_whatever_their_case(database):
    with database.session() as session:
        admin = actor(session)
        first = commands.create_tag(session, admin, "Straße")
        with pytest.raises(Conflict) as clash:
            commands.create_tag(session, admin, "STRASSE")
        assert clash.value.field == "name" and "Straße" in clash.value.message
        other = commands.create_tag(session, admin, "Cafe")
        commands.create_tag(session, admin, "Café")  # accents make another name, on MySQL too
        with pytest.raises(Conflict):
            commands.rename_tag(session, admin, other.id, "straße")
        assert commands.rename_tag(session, admin, first.id, "STRASSE").name == "STRASSE"  # its own name, recased


@pytest.mark.parametrize(
    ("name", "color", "field"),
    [
        ("", None, "name"),
        ("   ", None, "name"),
        ("x" * 65, None, "name"),
        ("a\nb", None, "name"),
        (None, None, "name"),
        ("ok", 8, "color"),
        ("ok", -1, "color"),
        ("ok", True, "color"),
        ("ok", "2", "color"),
    ],
)
def test_a_bad_tag_is_refused_naming_the_field(database, name, color, field):
    with database.session() as session:
        with pytest.raises(UserError) as refused:
            commands.create_tag(session, actor(session), name, color)
        assert (refused.value.status, refused.value.field) == (400, field)


def test_tags_take_the_labels_palette_in_turn_when_no_colour_is_given(database):
    with database.session() as session:
        admin = actor(session)
        colors = [commands.create_tag(session, admin, f"t{n}").color for n in range(9)]
    assert colors == [0, 1, 2, 3, 4, 5, 6, 7, 0]


def test_agents_tag_contacts_but_do_not_manage_tags(app, database):
    with database.session() as session:
        agent = actor(session, "agent")
        with pytest.raises(UserError) as refused:
            commands.create_tag(session, agent, "VIP")
        assert refused.value.status == 403
        vip = tag(session, "VIP")
        for forbidden in (
            lambda: commands.rename_tag(session, agent, vip.id, "V"),
            lambda: commands.recolour_tag(session, agent, vip.id, 1),
            lambda: commands.delete_tag(session, agent, vip.id),
        ):
            with pytest.raises(UserError) as refused:
                forbidden()
            assert refused.value.status == 403
        customer = factories.contact(session)
        assert commands.tag_contact(session, agent, customer.id, vip.id) is True
        assert commands.tag_contact(session, agent, customer.id, vip.id) is False  # already on: no trail
        session.commit()
        ids = (customer.id, vip.id)
    assert events(app, "contact.tagged") == [{"contact_id": ids[0], "tag_id": ids[1], "on": True}]
    assert [entry.detail for entry in audit(app, "contact.tag")] == [{"tag_id": ids[1]}]


def test_untagging_takes_the_tag_off_once(app, database):
    with database.session() as session:
        vip = tag(session, "VIP")
        customer = factories.contact(session)
        agent = actor(session, "agent")
        commands.tag_contact(session, agent, customer.id, vip.id)
        assert commands.untag_contact(session, agent, customer.id, vip.id) is True
        assert commands.untag_contact(session, agent, customer.id, vip.id) is False
        session.commit()
        ids = (customer.id, vip.id)
    assert [e["on"] for e in events(app, "contact.tagged")] == [True, False]
    assert len(audit(app, "contact.untag")) == 1
    with database.session() as session:
        assert services.tags_for(session, [ids[0]]) == {ids[0]: []}


def test_tagging_an_unknown_contact_or_tag_names_which(database):
    with database.session() as session:
        vip = tag(session, "VIP")
        customer = factories.contact(session)
        agent = actor(session, "agent")
        with pytest.raises(NotFound) as missing:
            commands.tag_contact(session, agent, 999_999, vip.id)
        assert missing.value.field == "contact_id"
        with pytest.raises(NotFound) as missing:
            commands.tag_contact(session, agent, customer.id, 999_999)
        assert missing.value.field == "tag_id"


def test_renaming_recolouring_and_deleting_a_tag(app, database):
    with database.session() as session:
        admin = actor(session)
        vip = tag(session, "VIP", 0)
        customers = [factories.contact(session) for _ in range(2)]
        for customer in customers:
            commands.tag_contact(session, admin, customer.id, vip.id)
        commands.rename_tag(session, admin, vip.id, "Gold")
        commands.recolour_tag(session, admin, vip.id, 5)
        assert [t.name for t in services.tags_for(session, [customers[0].id])[customers[0].id]] == ["Gold"]
        assert commands.delete_tag(session, admin, vip.id) == 2
        session.commit()
        vip_id = vip.id
    with database.session() as session:
        assert session.scalar(select(ContactTag).where(ContactTag.tag_id == vip_id)) is None
        assert session.get(Tag, vip_id) is None
    assert [e["change"] for e in events(app, "tag.changed")] == ["created", "renamed", "recoloured", "deleted"]
    assert audit(app, "tag.rename")[0].detail == {"from": "VIP", "to": "Gold"}
    assert audit(app, "tag.delete")[0].detail == {"name": "Gold", "contacts": 2}


# --- stages --------------------------------------------------------------------------------------


def test_stages_are_kept_in_order_when_added_moved_and_deleted(app, database):
    with database.session() as session:
        admin = actor(session)
        lead, won, lost = (stage(session, name) for name in ("Lead", "Won", "Lost"))
        commands.create_stage(session, admin, "Qualified", position=2)
        assert [s.name for s in services.list_stages(session)] == ["Lead", "Qualified", "Won", "Lost"]
        commands.move_stage(session, admin, lost.id, 1)
        assert [s.name for s in services.list_stages(session)] == ["Lost", "Lead", "Qualified", "Won"]
        commands.reorder_stages(
            session, admin, [lead.id, won.id, lost.id, services.find_stage(session, "qualified").id]
        )
        assert [s.name for s in services.list_stages(session)] == ["Lead", "Won", "Lost", "Qualified"]
        commands.delete_stage(session, admin, won.id)
        assert [(s.name, s.position) for s in services.list_stages(session)] == [
            ("Lead", 1),
            ("Lost", 2),
            ("Qualified", 3),
        ]
        session.commit()
    assert "moved" in [e["change"] for e in events(app, "stage.changed")]


@pytest.mark.parametrize("position", [0, 5, -1, "2", True, None])
def test_a_position_outside_the_list_is_refused_naming_it(database, position):
    with database.session() as session:
        lead = stage(session, "Lead")
        stage(session, "Won")
        with pytest.raises(UserError) as refused:
            commands.move_stage(session, actor(session), lead.id, position)
        assert refused.value.field == "position"


def test_a_reorder_must_name_every_stage_once(database):
    with database.session() as session:
        lead, won = stage(session, "Lead"), stage(session, "Won")
        for wrong in ([lead.id], [lead.id, lead.id], [lead.id, won.id, 999]):
            with pytest.raises(UserError) as refused:
                commands.reorder_stages(session, actor(session), wrong)
            assert refused.value.field == "stage_ids"


def test_stage_names_are_unique_whatever_their_case(database):
    with database.session() as session:
        stage(session, "Customer")
        with pytest.raises(Conflict) as clash:
            commands.create_stage(session, actor(session), "customer")
        assert clash.value.field == "name"


def test_setting_a_stage_keeps_its_history_with_who_and_when(app, database):
    with database.session() as session:
        lead, won = stage(session, "Lead"), stage(session, "Won")
        customer = factories.contact(session)
        agent = actor(session, "agent", "web")
        assert commands.set_stage(session, agent, customer.id, lead.id) is True
        assert commands.set_stage(session, agent, customer.id, lead.id) is False  # no history for no change
        # the history's times are the database's: make the first stretch an hour long
        session.flush()
        first = session.scalar(select(StageChange).where(StageChange.contact_id == customer.id))
        first.changed_at -= timedelta(hours=1)
        session.get(ContactStage, customer.id).since -= timedelta(hours=1)
        commands.set_stage(session, Actor.system(), customer.id, won.id)
        session.commit()
        ids = (customer.id, lead.id, won.id, agent.user.id, agent.user.name)
    contact_id, lead_id, won_id, agent_id, agent_name = ids
    with database.session() as session:
        history = services.stage_history(session, contact_id)
        assert services.stage_names_for(session, [contact_id]) == {contact_id: "Won"}
    assert [(p.stage, p.by_user_id, p.by, p.channel) for p in history] == [
        ("Lead", agent_id, agent_name, "web"),
        ("Won", None, "SigDesk", "worker"),
    ]
    assert 3590 <= history[0].seconds <= 3610 and history[0].left_at == history[1].entered_at
    assert history[1].left_at is None and history[1].seconds < 60
    assert events(app, "contact.stage_changed") == [
        {"contact_id": contact_id, "stage_id": lead_id, "previous_stage_id": None},
        {"contact_id": contact_id, "stage_id": won_id, "previous_stage_id": lead_id},
    ]
    assert [e.detail for e in audit(app, "contact.stage")] == [
        {"stage_id": lead_id, "previous_stage_id": None},
        {"stage_id": won_id, "previous_stage_id": lead_id},
    ]


def test_a_contact_can_leave_its_stage_for_none(database):
    with database.session() as session:
        lead = stage(session, "Lead")
        customer = factories.contact(session)
        agent = actor(session, "agent")
        commands.set_stage(session, agent, customer.id, lead.id)
        assert commands.set_stage(session, agent, customer.id, None) is True
        assert services.stages_for(session, [customer.id]) == {customer.id: None}
        assert [p.stage for p in services.stage_history(session, customer.id)] == ["Lead", None]


def test_setting_an_unknown_stage_or_contact_names_which(database):
    with database.session() as session:
        lead = stage(session, "Lead")
        customer = factories.contact(session)
        agent = actor(session, "agent")
        with pytest.raises(NotFound) as missing:
            commands.set_stage(session, agent, customer.id, 999_999)
        assert missing.value.field == "stage_id"
        with pytest.raises(NotFound) as missing:
            commands.set_stage(session, agent, 999_999, lead.id)
        assert missing.value.field == "contact_id"
        with pytest.raises(NotFound):
            services.stage_history(session, 999_999)


def test_agents_set_stages_but_do_not_manage_them(database):
    with database.session() as session:
        agent = actor(session, "agent")
        lead = stage(session, "Lead")
        for forbidden in (
            lambda: commands.create_stage(session, agent, "New"),
            lambda: commands.rename_stage(session, agent, lead.id, "New"),
            lambda: commands.move_stage(session, agent, lead.id, 1),
            lambda: commands.reorder_stages(session, agent, [lead.id]),
            lambda: commands.delete_stage(session, agent, lead.id),
        ):
            with pytest.raises(UserError) as refused:
                forbidden()
            assert refused.value.status == 403


def test_deleting_a_stage_in_use_asks_for_a_replacement(app, database):
    with database.session() as session:
        admin = actor(session)
        lead, won = stage(session, "Lead"), stage(session, "Won")
        customers = [factories.contact(session) for _ in range(3)]
        for customer in customers[:2]:
            commands.set_stage(session, admin, customer.id, lead.id)
        with pytest.raises(Conflict) as refused:
            commands.delete_stage(session, admin, lead.id)
        assert refused.value.field == "replacement_id" and "2 contact(s)" in refused.value.message
        for wrong in (lead.id, 999_999):
            with pytest.raises(UserError) as refused:
                commands.delete_stage(session, admin, lead.id, wrong)
            assert refused.value.field == "replacement_id"
        assert commands.delete_stage(session, admin, lead.id, won.id) == 2
        session.commit()
        ids = [c.id for c in customers], lead.id, won.id
    contact_ids, lead_id, won_id = ids
    with database.session() as session:
        assert services.stage_names_for(session, contact_ids) == dict(zip(contact_ids, ["Won", "Won", None]))
        history = services.stage_history(session, contact_ids[0])
        assert [(p.stage_id, p.stage) for p in history] == [(None, "Lead"), (won_id, "Won")]
    moved = [e for e in events(app, "contact.stage_changed") if e["previous_stage_id"] == lead_id]
    assert sorted(e["contact_id"] for e in moved) == sorted(contact_ids[:2])
    assert events(app, "stage.changed")[-1] == {"stage_id": lead_id, "change": "deleted", "replacement_id": won_id}
    assert audit(app, "stage.delete")[0].detail == {"name": "Lead", "contacts": 2, "replacement_id": won_id}


def test_an_unused_stage_is_deleted_without_a_replacement(database):
    with database.session() as session:
        lead = stage(session, "Lead")
        assert commands.delete_stage(session, actor(session), lead.id) == 0
        assert services.list_stages(session) == []


# --- reading many contacts at once ---------------------------------------------------------------


def test_tags_and_stages_of_many_contacts_are_read_in_one_query_each(database):
    with database.session() as session:
        admin = actor(session)
        vip, nuts = tag(session, "VIP"), tag(session, "allergic to nuts")
        lead = stage(session, "Lead")
        customers = [factories.contact(session) for _ in range(30)]
        for customer in customers[::2]:
            commands.tag_contact(session, admin, customer.id, vip.id)
            commands.set_stage(session, admin, customer.id, lead.id)
        commands.tag_contact(session, admin, customers[0].id, nuts.id)
        session.commit()
        ids = [c.id for c in customers]
    with database.session() as session:
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(database.engine, "before_cursor_execute", listener)
        try:
            names = services.tag_names_for(session, ids)
            stages = services.stage_names_for(session, ids)
        finally:
            event.remove(database.engine, "before_cursor_execute", listener)
    assert len([sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]) == 2
    assert names[ids[0]] == ["allergic to nuts", "VIP"] and names[ids[1]] == [] and names[ids[2]] == ["VIP"]
    assert stages[ids[0]] == "Lead" and stages[ids[1]] is None
    assert services.tags_for(session, []) == {} and services.stages_for(session, []) == {}


def test_the_migration_creates_the_default_lifecycle(tmp_path):
    """On a new database (MariaDB tests empty every table between tests, so this looks at a fresh SQLite one)."""
    from sigdesk.app import create_app
    from sigdesk.config import Config

    config = Config(data_dir=tmp_path / "fresh", database_url=f"sqlite:///{tmp_path / 'fresh.db'}", testing=True)
    fresh = create_app(config)
    with fresh.extensions["sigdesk"].database.session() as session:
        stages = [(s.name, s.position) for s in services.list_stages(session)]
        assert session.scalar(select(Tag.id)) is None
        assert services.find_stage(session, "new LEAD") is not None  # keys as the commands make them
    fresh.extensions["sigdesk"].database.dispose()
    assert stages == [(name, n) for n, name in enumerate(services.DEFAULT_STAGES, start=1)]


def test_tags_and_stage_are_set_by_name_as_the_contact_record_gives_them(app, database):
    with database.session() as session:
        agent = actor(session, "agent")
        vip, nuts, _ = tag(session, "VIP"), tag(session, "Nuts"), tag(session, "Other")
        lead = stage(session, "Lead")
        customer = factories.contact(session)
        commands.tag_contact(session, agent, customer.id, nuts.id)
        assert commands.set_tags_by_name(session, agent, customer.id, ["vip", "OTHER"]) == ["VIP", "Other"]
        assert services.tag_names_for(session, [customer.id]) == {customer.id: ["Other", "VIP"]}
        with pytest.raises(UserError) as refused:
            commands.set_tags_by_name(session, agent, customer.id, ["VIP", "Nobody"])
        assert refused.value.field == "tags" and "Nobody" in refused.value.message
        assert services.tag_names_for(session, [customer.id]) == {customer.id: ["Other", "VIP"]}
        assert commands.set_stage_by_name(session, agent, customer.id, "lead") is True
        assert services.stage_names_for(session, [customer.id]) == {customer.id: "Lead"}
        with pytest.raises(UserError) as refused:
            commands.set_stage_by_name(session, agent, customer.id, "Prospect")
        assert refused.value.field == "stage"
        assert commands.set_stage_by_name(session, agent, customer.id, None) is True
        assert lead.id and vip.id
