"""A contact as every reader sees it (ContactData: the API, exports, search) carries its tags and stage."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sigdesk.contacts.services import ContactData, list_contacts
from sigdesk.lifecycle import commands
from sigdesk.models import Contact
from tests import factories
from tests.lifecycle.helpers import Api, actor, clear_stages, stage, tag

pytestmark = pytest.mark.database


def test_a_contacts_data_names_its_tags_and_stage(app):
    database = app.extensions["sigdesk"].database
    clear_stages(database)
    with database.session() as session:
        admin = actor(session)
        vip, nuts = tag(session, "VIP"), tag(session, "allergic to nuts")
        lead = stage(session, "Lead")
        tagged, plain = factories.contact(session), factories.contact(session)
        for each in (vip, nuts):
            commands.tag_contact(session, admin, tagged.id, each.id)
        commands.set_stage(session, admin, tagged.id, lead.id)
        session.commit()
        ids = tagged.id, plain.id
    with database.session() as session:
        one = ContactData.of(session.scalar(select(Contact).where(Contact.id == ids[0])))
        listed = {item.id: item for item in list_contacts(session).items}
    assert (one.tags, one.stage) == (["allergic to nuts", "VIP"], "Lead")
    assert (listed[ids[0]].tags, listed[ids[0]].stage) == (["allergic to nuts", "VIP"], "Lead")
    assert (listed[ids[1]].tags, listed[ids[1]].stage) == ([], None)
    answer = Api.of(app, "agent").call("GET", f"/contacts/{ids[0]}").json
    assert (answer["tags"], answer["stage"]) == (["allergic to nuts", "VIP"], "Lead")


def test_contacts_are_found_by_tag_and_by_stage_whatever_the_case(app):
    from sigdesk.lifecycle.services import in_stage, tagged

    database = app.extensions["sigdesk"].database
    clear_stages(database)
    with database.session() as session:
        admin = actor(session)
        vip, lead = tag(session, "VIP"), stage(session, "Lead")
        first, second, third = (factories.contact(session) for _ in range(3))
        commands.tag_contact(session, admin, first.id, vip.id)
        commands.set_stage(session, admin, second.id, lead.id)
        session.commit()

        def ids(condition):
            return sorted(session.scalars(select(Contact.id).where(condition)))

        assert ids(tagged("vip")) == [first.id]
        assert ids(tagged("nobody uses this")) == []
        assert ids(in_stage("LEAD")) == [second.id]
        assert ids(in_stage(None)) == sorted([first.id, third.id])
