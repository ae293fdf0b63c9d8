"""The segment and bulk commands called directly (as the CLI, the pages and the worker do): the same rules,
audit entries and events as through the API; bulk stage changes keep every contact's stage history."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sigdesk.actor import Actor
from sigdesk.errors import Conflict, Refused, UserError
from sigdesk.lifecycle.services import find_stage, find_tag
from sigdesk.models import Contact, ContactStage, ContactTag, Segment, StageChange, User
from sigdesk.segments import commands
from sigdesk.segments.commands import BulkTarget, bulk_update
from sigdesk.segments.services import contact_ids, count_contacts, definition_of
from tests import factories
from tests.commanding import audit, events
from tests.segments.helpers import build_world

pytestmark = pytest.mark.database

VIP = {"conditions": [{"field": "tag", "op": "has", "value": "VIP"}]}


@pytest.fixture
def world(app):
    return build_world(app.extensions["sigdesk"].database)


def _as(session, role: str) -> Actor:
    return Actor(factories.user(session, role), "cli")


def test_a_segment_is_saved_renamed_redefined_and_deleted_with_an_audit_entry_each(app, world):
    with app.extensions["sigdesk"].database.session() as session:
        agent = _as(session, "agent")
        segment = commands.create_segment(session, agent, "  VIPs ", VIP)
        assert segment.name == "VIPs" and segment.created_by == agent.user_id
        assert commands.update_segment(session, agent, segment.id, name="VIPs") is segment  # unchanged: no entry
        commands.update_segment(session, agent, segment.id, name="Top", definition={"match": "any", **VIP})
        assert definition_of(session, segment.id).match == "any"
        with pytest.raises(Conflict):
            commands.create_segment(session, agent, "top", {})
        with pytest.raises(Refused) as refused:
            commands.update_segment(session, agent, segment.id, definition={"conditions": [{"field": "x", "op": "is"}]})
        assert refused.value.field == "conditions[0].field"
        commands.delete_segment(session, agent, segment.id)
        session.commit()
        assert session.scalar(select(func.count()).select_from(Segment)) == 0
    assert [entry.action for entry in audit(app, "segment.create") + audit(app, "segment.update")] == [
        "segment.create",
        "segment.update",
    ]
    assert [e["change"] for e in events(app, "segment.changed")] == ["created", "renamed", "redefined", "deleted"]


def test_contact_ids_reads_every_match_in_batches(app, world):
    with app.extensions["sigdesk"].database.session() as session:
        assert list(contact_ids(session, None, batch=1)) == sorted(world.ids.values())
        assert list(contact_ids(session, VIP, batch=2)) == [world.ids["alice"]]


def test_bulk_stage_changes_write_each_contacts_history(app, world):
    with app.extensions["sigdesk"].database.session() as session:
        agent = _as(session, "agent")
        lead = find_stage(session, "Lead")
        done = bulk_update(session, agent, BulkTarget(), "set_stage", lead.id)
        assert (done.matched, done.done) == (3, 2)  # Alice already was a lead
        assert (
            session.scalar(select(func.count()).select_from(ContactStage).where(ContactStage.stage_id == lead.id)) == 3
        )
        history = session.scalars(
            select(StageChange.contact_id).where(StageChange.actor_id == agent.user_id).order_by(StageChange.contact_id)
        ).all()
        assert history == [world.ids["bob"], world.ids["cleo"]]
        cleared = bulk_update(session, agent, BulkTarget(ids=[world.ids["bob"]]), "set_stage", None)
        assert cleared.done == 1 and session.get(ContactStage, world.ids["bob"]) is None
        session.commit()
    [entry] = audit(app, "contacts.bulk")[:1]
    assert entry.detail == {
        "action": "set_stage",
        "target": "filter",
        "matched": 3,
        "done": 2,
        "refused": 0,
        "stage_id": lead.id,
    }


def test_untag_on_a_filter_by_that_same_tag_takes_it_off_everyone_it_found(app, world):
    with app.extensions["sigdesk"].database.session() as session:
        vip = find_tag(session, "VIP")
        actor = _as(session, "agent")
        assert bulk_update(session, actor, BulkTarget(ids=list(world.ids.values())), "tag", vip.id).done == 2
        assert bulk_update(session, actor, BulkTarget(definition=VIP), "untag", vip.id).done == 3
        assert session.scalar(select(func.count()).select_from(ContactTag).where(ContactTag.tag_id == vip.id)) == 0
        assert count_contacts(session, VIP) == 0


def test_roles_decide_each_bulk_action(app, world):
    with app.extensions["sigdesk"].database.session() as session:
        agent, admin = _as(session, "agent"), _as(session, "admin")
        owner_id = session.scalar(select(User.id).where(User.role == "agent").order_by(User.id))
        assert bulk_update(session, agent, BulkTarget(q="bob"), "set_owner", owner_id).done == 1
        assert bulk_update(session, agent, BulkTarget(q="bob"), "set_owner", owner_id).done == 0
        with pytest.raises(UserError) as refused:
            bulk_update(session, agent, BulkTarget(ids=[world.ids["cleo"]]), "delete")
        assert refused.value.status == 403
        done = bulk_update(session, admin, BulkTarget(ids=[world.ids["bob"], world.ids["cleo"]]), "delete")
        assert (done.done, done.refused) == (1, 1)
        assert session.get(Contact, world.ids["cleo"]) is None
        session.commit()
    assert events(app, "contacts.bulk_changed")[-1] == {
        "action": "delete",
        "count": 1,
        "refused": 1,
        "tag_id": None,
        "stage_id": None,
        "owner_id": None,
    }
    # each deleted contact is announced as deleting it alone would be, so integrations hear of it
    assert events(app, "contact.deleted") == [{"contact_id": world.ids["cleo"]}]


def test_a_bulk_action_on_a_filter_naming_a_deleted_tag_changes_nothing(app, world):
    with app.extensions["sigdesk"].database.session() as session:
        admin = _as(session, "admin")
        target = BulkTarget(definition={"conditions": [{"field": "tag", "op": "has", "value": "Gone"}]})
        with pytest.raises(Refused, match="The tag 'Gone' no longer exists"):
            bulk_update(session, admin, target, "delete")
        assert session.scalar(select(func.count()).select_from(Contact)) == 3
