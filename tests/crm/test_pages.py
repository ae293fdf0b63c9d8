"""The Contacts page and the contact page: find, filter, page, edit, record consent, act in bulk; a refused
form keeps what was typed and says why next to the field; roles decide who may delete."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.consent.commands import record_consent
from sigdesk.contacts.commands import update_contact
from sigdesk.crm import views
from sigdesk.lifecycle import commands
from sigdesk.models import ConsentEvent, Contact
from tests import factories
from tests.commanding import audit
from tests.conftest import csrf_from
from tests.lifecycle.helpers import clear_stages, stage, tag

pytestmark = pytest.mark.database


@pytest.fixture
def database(app):
    database = app.extensions["sigdesk"].database
    clear_stages(database)
    return database


def add(database, **fields) -> int:
    with database.session() as session:
        contact = factories.contact(session, **fields)
        session.commit()
        return contact.id


def rows(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr data-contact-id="(\d+)"', html)]


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def post(client, path: str, data: dict, form_page: str):
    token = csrf_from(client.get(form_page).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def signed_in_as(auth, role: str):
    person = auth.create_user(role)
    auth.logout()
    auth.login(person)
    return person


def test_the_contacts_page_lists_contacts_newest_first_and_marks_those_who_opted_out(app, auth, owner, database):
    first = add(database, name="Ana Alves", email="ana@example.com", company="Alves Bakery")
    second = add(database, name="Bruno Braga")
    with database.session() as session:
        record_consent(session, Actor.system("cli"), second, "opted_out", "agent", "Said so on the phone")
        session.commit()
    html = page(auth.client, "/contacts/")
    assert rows(html) == [second, first]
    assert 'id="nav-contacts"' in html and 'aria-current="page">Contacts<' in html
    bruno = html.split(f'data-contact-id="{second}"')[1].split("</tr>")[0]
    assert 'data-consent="opted_out"' in bruno and "Opted out" in bruno
    assert 'data-consent="opted_out"' not in html.split(f'data-contact-id="{first}"')[1].split("</tr>")[0]


@pytest.mark.parametrize("query", ["+49 170 1234567", "0049 1701234567", "1701234567", "rosa", "ROSA@EX", "konditorei"])
def test_search_finds_a_contact_by_phone_in_any_format_name_email_or_company(app, auth, owner, database, query):
    rosa = add(database, wa_id="491701234567", name="Rosa Rossi", email="rosa@example.com", company="Konditorei Rossi")
    add(database, wa_id="15550001111", name="Other Person", email="other@example.org")
    assert rows(page(auth.client, f"/contacts/?q={query.replace('+', '%2B')}")) == [rosa]


def test_filters_by_tag_stage_and_consent_live_in_the_url_and_the_fragment_shows_the_same(app, auth, owner, database):
    with database.session() as session:
        vip, lead = tag(session, "VIP"), stage(session, "Lead")
        tagged, staged, both = (factories.contact(session) for _ in range(3))
        actor = Actor.system("cli")
        commands.tag_contact(session, actor, tagged.id, vip.id)
        commands.tag_contact(session, actor, both.id, vip.id)
        commands.set_stage(session, actor, staged.id, lead.id)
        commands.set_stage(session, actor, both.id, lead.id)
        session.commit()
        ids = tagged.id, staged.id, both.id
    assert sorted(rows(page(auth.client, "/contacts/?tag=VIP"))) == sorted([ids[0], ids[2]])
    assert rows(page(auth.client, "/contacts/?tag=VIP&stage=Lead")) == [ids[2]]
    fragment = page(auth.client, "/contacts/?tag=VIP&stage=Lead&fragment=table")
    assert fragment.lstrip().startswith("<div") and "<html" not in fragment and rows(fragment) == [ids[2]]
    assert 'data-total="1"' in fragment
    # the chosen filter stays chosen when the page is opened from its URL (bookmarked, or back again)
    html = page(auth.client, "/contacts/?tag=VIP")
    assert re.search(r'<option value="VIP"\s+selected>', html)


def test_a_condition_on_any_field_is_typed_into_the_page(app, auth, owner, database):
    add(database, city="Berlin", email="a@example.com")
    munich = add(database, city="München", email="b@example.com")
    html = page(auth.client, "/contacts/?f=city&o=is&v=M%C3%BCnchen")
    assert rows(html) == [munich]


def test_a_filter_that_cannot_run_says_why_instead_of_failing(app, auth, owner, database):
    add(database)
    html = page(auth.client, "/contacts/?tag=Nonexistent")
    assert 'id="filter-problem"' in html and rows(html) == []


def test_the_table_pages_by_keyset_without_repeating_or_skipping(app, auth, owner, database):
    with database.session() as session:
        made = [factories.contact(session).id for _ in range(views.PAGE_SIZE + 7)]
        session.commit()
    first = page(auth.client, "/contacts/")
    link = unescape(re.search(r'id="contacts-more" href="([^"]+)"', first).group(1))
    assert "cursor=" in link
    second = auth.client.get(link + "&fragment=rows")
    assert second.headers["X-Next-Url"] == ""
    seen = rows(first) + rows(second.get_data(as_text=True))
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))


def test_an_agent_edits_the_record_tags_and_stage_and_the_whatsapp_name_stays(app, auth, owner, database):
    with database.session() as session:
        tag(session, "VIP")
        stage(session, "Qualified")
        contact = factories.contact(session, name="rosa_wa")
        session.commit()
        contact_id = contact.id
    signed_in_as(auth, "agent")
    done = post(
        auth.client,
        f"/contacts/{contact_id}",
        {
            "name": "Rosa Rossi",
            "email": "Rosa@Example.com",
            "company": "Rossi GmbH",
            "country": "de",
            "notes": "Prefers mornings",
            "tags_present": "1",
            "tags": "VIP",
            "stage": "Qualified",
            "owner_id": "",
        },
        f"/contacts/{contact_id}",
    )
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/contacts/{contact_id}")
    with database.session() as session:
        stored = session.get(Contact, contact_id)
        assert (stored.display_name, stored.profile_name, stored.email) == ("Rosa Rossi", "rosa_wa", "rosa@example.com")
        assert (stored.company, stored.country) == ("Rossi GmbH", "DE")
    html = page(auth.client, f"/contacts/{contact_id}")
    assert "Saved the contact." in html and 'WhatsApp name: <span id="profile-name">rosa_wa</span>' in html
    assert re.search(r'<option value="Qualified"\s+selected>', html)
    timeline = html.split('id="timeline"')[1]
    assert "Tagged VIP" in timeline and "Stage set to Qualified" in timeline and "Record edited" in timeline
    assert [entry.channel for entry in audit(app, "contact.updated")] == ["web"]


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("email", "rosa at example", "not an email address"),
        ("phone", "12", "not a valid phone number"),
        ("country", "XX", "two-letter ISO code"),
        ("language", "english!", "language as a code"),
    ],
)
def test_a_refused_edit_says_why_next_to_the_field_and_keeps_what_was_typed(
    app, auth, owner, database, field, typed, message
):
    contact_id = add(database, name="Rosa", email="rosa@example.com")
    refused = post(
        auth.client,
        f"/contacts/{contact_id}",
        {"name": "Rosa Rossi", field: typed},
        f"/contacts/{contact_id}",
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    found = re.search(
        rf'<input id="field-{field}"[^>]*>\s*(?:<small[^>]*>[^<]*</small>\s*)?<div class="field-error"', html
    )
    assert found, html.split('id="record-form"')[1][:3000]
    assert f'value="{typed}"' in found.group(0) and 'aria-invalid="true"' in found.group(0)
    assert message in unescape(html.split(f'id="{field}-error">')[1].split("</div>")[0])
    assert 'value="Rosa Rossi"' in html  # what was typed in the other fields is kept too
    with database.session() as session:
        assert session.get(Contact, contact_id).display_name is None  # nothing of the refused form was stored


def test_an_agent_records_an_opt_out_with_evidence_and_the_page_marks_it(app, auth, owner, database):
    contact_id = add(database)
    signed_in_as(auth, "agent")
    done = post(
        auth.client,
        f"/contacts/{contact_id}/consent",
        {"status": "opted_out", "evidence": "Asked on the phone, 3 May"},
        f"/contacts/{contact_id}",
    )
    assert done.status_code == 302
    with database.session() as session:
        event = session.scalar(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id))
        assert (event.status, event.source, event.evidence, event.channel) == (
            "opted_out",
            "agent",
            "Asked on the phone, 3 May",
            "web",
        )
    html = page(auth.client, f"/contacts/{contact_id}")
    assert 'id="opted-out-badge"' in html and "Asked on the phone" in html.split('id="consent-history"')[1]
    refused = post(auth.client, f"/contacts/{contact_id}/consent", {"status": "maybe"}, f"/contacts/{contact_id}")
    assert refused.status_code == 400 and 'id="status-error"' in refused.get_data(as_text=True)


def test_agents_may_not_delete_admins_may_and_contacts_with_conversations_are_kept(app, auth, owner, database):
    lone = add(database)
    with database.session() as session:
        talked = factories.conversation(session).contact_id
        session.commit()
    signed_in_as(auth, "agent")
    assert 'id="delete-form"' not in page(auth.client, f"/contacts/{lone}")
    assert post(auth.client, f"/contacts/{lone}/delete", {}, f"/contacts/{lone}").status_code == 403
    refused = post(auth.client, "/contacts/bulk", {"action": "delete", "ids": str(lone)}, "/contacts/")
    assert refused.status_code == 403
    signed_in_as(auth, "admin")
    kept = post(auth.client, f"/contacts/{talked}/delete", {}, f"/contacts/{talked}")
    assert kept.status_code == 422 and "anonymise" in kept.get_data(as_text=True)
    assert post(auth.client, f"/contacts/{lone}/delete", {}, f"/contacts/{lone}").status_code == 302
    with database.session() as session:
        assert session.get(Contact, lone) is None and session.get(Contact, talked) is not None


def test_only_people_who_may_see_contacts_open_the_pages(app, client):
    assert client.get("/contacts/").status_code in (302, 401)


def test_bulk_tagging_reaches_the_chosen_contacts_or_everything_the_filter_finds(app, auth, owner, database):
    with database.session() as session:
        vip, berliners = tag(session, "VIP").id, tag(session, "Berlin").id
        berlin = [factories.contact(session, city="Berlin").id for _ in range(3)]
        other = factories.contact(session, city="Hamburg").id
        session.commit()
    chosen = post(
        auth.client, "/contacts/bulk", {"action": "tag", "tag": str(vip), "ids": [berlin[0], other]}, "/contacts/"
    )
    assert chosen.status_code == 302
    assert sorted(rows(page(auth.client, "/contacts/?tag=VIP"))) == sorted([berlin[0], other])
    whole = post(
        auth.client,
        "/contacts/bulk",
        {"action": "tag", "tag": str(berliners), "all": "1", "query": "f=city&o=is&v=Berlin"},
        "/contacts/",
    )
    assert whole.status_code == 302 and "f=city" in whole.headers["Location"]
    assert sorted(rows(page(auth.client, "/contacts/?tag=Berlin"))) == sorted(berlin)
    nothing = post(auth.client, "/contacts/bulk", {"action": "tag", "tag": str(vip)}, "/contacts/")
    assert "Choose some contacts first" in page(auth.client, nothing.headers["Location"])


def test_the_current_filter_is_saved_as_a_segment_listed_with_its_live_count(app, auth, owner, database):
    with database.session() as session:
        tag(session, "VIP")
        session.commit()
    for _ in range(2):
        add(database, city="Berlin")
    add(database, city="Hamburg")
    saved = post(
        auth.client, "/contacts/segments", {"name": "Berliners", "query": "f=city&o=is&v=Berlin"}, "/contacts/"
    )
    assert saved.status_code == 302
    opened = page(auth.client, saved.headers["Location"])
    assert len(rows(opened)) == 2
    listed = opened.split('id="segment-list"')[1].split("</ul>")[0]
    assert "Berliners" in listed and '<span class="badge segment-count">2</span>' in listed


def test_the_inbox_panel_shows_the_record_and_links_to_the_contact(app, auth, owner, database):
    with database.session() as session:
        tag(session, "VIP")
        contact = factories.contact(session, email="rosa@example.com", company="Rossi GmbH")
        conversation = factories.conversation(session, contact)
        session.commit()
        ids = contact.id, conversation.id
    html = page(auth.client, f"/inbox/c/{ids[1]}/panel")
    assert 'data-contact-field="email">rosa@example.com' in html and "Rossi GmbH" in html
    assert f'href="/contacts/{ids[0]}"' in html and 'id="panel-contact-form"' in html
    # the panel's quick edit is the inbox's own call, through the same command as the contact page
    token = csrf_from(page(auth.client, "/"))
    headers = {"X-CSRFToken": token}
    answer = auth.client.post(
        f"/inbox/c/{ids[1]}/contact", json={"company": "Rossi & Figli", "email": "nope"}, headers=headers
    )
    assert answer.status_code == 400 and answer.json["field"] == "email"
    answer = auth.client.post(
        f"/inbox/c/{ids[1]}/contact", json={"company": "Rossi & Figli", "tags": ["VIP"]}, headers=headers
    )
    assert answer.status_code == 200 and answer.json == {"contact_id": ids[0]}
    assert auth.client.post(f"/inbox/c/{ids[1]}/contact", json={"colour": "red"}, headers=headers).status_code == 400
    html = page(auth.client, f"/inbox/c/{ids[1]}/panel")
    assert "Rossi &amp; Figli" in html and 'data-contact-field="tags"' in html


def test_the_header_links_to_import_duplicates_and_an_export_of_the_filter_for_those_who_may(
    app, auth, owner, database
):
    with database.session() as session:
        tag(session, "VIP")
        session.commit()
    html = page(auth.client, "/contacts/?tag=VIP&q=rosa")
    for endpoint, key in (("imports.index", "link-import"), ("merge.duplicates", "link-duplicates")):
        if endpoint in app.view_functions:
            assert f'id="{key}"' in html
    if views.EXPORT_ENDPOINT in app.view_functions:
        link = unescape(re.search(r'id="export-these" href="([^"]+)"', html).group(1))
        assert "filter=" in link and "VIP" in unquote(link) and "q=rosa" in link
    signed_in_as(auth, "agent")
    html = page(auth.client, "/contacts/")
    assert 'id="export-these"' not in html and 'id="link-import"' not in html and 'id="link-duplicates"' not in html


def test_the_page_searches_filters_on_consent_and_untags_everything_the_filter_finds(app, auth, owner, database):
    with database.session() as session:
        vip = tag(session, "VIP")
        tagged = factories.contact(session, email="vip@example.com")
        factories.contact(session, email="plain@example.com")
        commands.tag_contact(session, Actor.system("cli"), tagged.id, vip.id)
        session.commit()
        tagged_id, vip_id = tagged.id, vip.id
    assert rows(page(auth.client, "/contacts/?tag=VIP")) == [tagged_id]
    assert rows(page(auth.client, "/contacts/?q=vip%40")) == [tagged_id]
    assert rows(page(auth.client, "/contacts/?consent=opted_out")) == []
    assert 'id="filter-problem"' in page(auth.client, "/contacts/?f=shoe_size&o=gt&v=3")
    done = post(auth.client, "/contacts/bulk", {"action": "untag", "tag": str(vip_id), "all": "1"}, "/contacts/")
    assert done.status_code == 302 and rows(page(auth.client, "/contacts/?tag=VIP")) == []


def test_the_sort_offers_every_sort_the_finder_takes_custom_fields_too_and_sorts_by_them(app, auth, owner, database):
    from sigdesk.custom_fields.commands import define_field
    from sigdesk.segments.services import SORTS

    with database.session() as session:
        define_field(session, Actor.system("cli"), "Budget", "number", key="budget")
        made = {}
        for name, budget in (("Cleo", "300"), ("Abel", "100"), ("Bea", "200")):
            contact = factories.contact(session, name=name)
            update_contact(session, Actor.system("cli"), contact.id, {"fields": {"budget": budget}}, from_text=True)
            made[name] = contact.id
        session.commit()
    html = page(auth.client, "/contacts/")
    offered = set(re.findall(r'<option value="([^"]+)"', html.split('id="filter-sort"')[1].split("</select>")[0]))
    assert {*SORTS, *(f"-{key}" for key in SORTS), "field:budget", "-field:budget"} <= offered
    assert rows(page(auth.client, "/contacts/?sort=name")) == [made["Abel"], made["Bea"], made["Cleo"]]
    assert rows(page(auth.client, "/contacts/?sort=-field:budget")) == [made["Cleo"], made["Bea"], made["Abel"]]
    # a heading links to its sort, and the other way round once the table is sorted on it
    sorted_html = page(auth.client, "/contacts/?sort=field:budget")
    assert 'data-sort="-field:budget"' in sorted_html and 'aria-sort="ascending"' in sorted_html
    # a sort SigDesk does not offer is read as the default: newest first
    assert rows(page(auth.client, "/contacts/?sort=shoe_size")) == [made["Bea"], made["Abel"], made["Cleo"]]


def test_bulk_actions_post_the_tag_and_stage_ids_and_a_missing_tag_is_asked_for(app, auth, owner, database):
    with database.session() as session:
        lead = stage(session, "Lead")
        first, second = factories.contact(session).id, factories.contact(session).id
        session.commit()
        lead_id = lead.id
    html = page(auth.client, "/contacts/")
    bulk_form = html.split('id="bulk-form"')[1].split("</form>")[0]
    assert f'<option value="{lead_id}">Lead</option>' in bulk_form
    done = post(auth.client, "/contacts/bulk", {"action": "set_stage", "stage": str(lead_id), "ids": [first]}, "/")
    assert "Done: 1 contact(s) changed." in page(auth.client, done.headers["Location"])
    assert rows(page(auth.client, "/contacts/?stage=Lead")) == [first]
    asked = post(auth.client, "/contacts/bulk", {"action": "tag", "tag": "", "ids": [second]}, "/contacts/")
    assert "Choose a tag first." in page(auth.client, asked.headers["Location"])
    cleared = post(auth.client, "/contacts/bulk", {"action": "set_stage", "stage": "", "all": "1"}, "/contacts/")
    assert cleared.status_code == 302 and rows(page(auth.client, "/contacts/?stage=Lead")) == []


def test_opening_a_segment_filters_by_it_and_a_segment_that_cannot_run_says_so(app, auth, owner, database):
    from sigdesk.segments.commands import create_segment

    with database.session() as session:
        vip = tag(session, "VIP")
        tagged = factories.contact(session, city="Berlin")
        factories.contact(session, city="Berlin")
        commands.tag_contact(session, Actor.system("cli"), tagged.id, vip.id)
        segment = create_segment(
            session, Actor.system("cli"), "VIPs", {"conditions": [{"field": "tag", "op": "has", "value": "VIP"}]}
        )
        session.commit()
        ids = tagged.id, segment.id, vip.id
    html = page(auth.client, f"/contacts/?segment={ids[1]}")
    assert rows(html) == [ids[0]] and 'id="segment-heading"' in html
    listed = html.split('id="segment-list"')[1].split("</ul>")[0]
    assert '<span class="badge segment-count">1</span>' in listed
    # the page's own conditions narrow the open segment
    assert rows(page(auth.client, f"/contacts/?segment={ids[1]}&f=city&o=is&v=Hamburg")) == []
    with database.session() as session:
        commands.delete_tag(session, Actor.system("cli"), ids[2])
        session.commit()
    html = page(auth.client, f"/contacts/?segment={ids[1]}")
    assert 'id="filter-problem"' in html and rows(html) == []
    assert 'segment-count" title=' in html.split('id="segment-list"')[1]
    assert 'id="filter-problem"' in page(auth.client, "/contacts/?segment=999999")


def test_only_the_inbox_imports_the_contacts_section():
    """crm is an entry point over contacts, segments and the rest: nothing builds on it."""
    from tests.test_architecture import feature_graph

    importers = {source for source, targets in feature_graph().items() if "crm" in targets}
    assert importers <= {"inbox"}


def _assigned_note(database, assignee_email: str) -> tuple[int, int]:
    """A contact whose one conversation is assigned to the agent with `assignee_email`, with a team note."""
    from sigdesk.models import User

    with database.session() as session:
        assignee = session.scalar(select(User).where(User.email == assignee_email))
        contact = factories.contact(session)
        conversation = factories.conversation(session, contact, assignee_id=assignee.id)
        factories.note(session, conversation, "Bob's private note")
        session.commit()
        return contact.id, conversation.id


def test_an_agent_reads_no_note_of_a_conversation_assigned_to_someone_else(app, auth, owner, database):
    bob = auth.create_user("agent", "bob@example.com")
    contact_id, conversation_id = _assigned_note(database, bob.email)
    html = page(auth.client, f"/contacts/{contact_id}")  # the owner sees it all
    assert "Bob&#39;s private note" in html and 'id="open-conversation"' in html
    signed_in_as(auth, "admin")
    assert "Bob&#39;s private note" in page(auth.client, f"/contacts/{contact_id}")
    signed_in_as(auth, "agent")
    for path in (f"/contacts/{contact_id}", f"/contacts/{contact_id}/timeline"):
        html = page(auth.client, path)
        assert "private note" not in html and f"c={conversation_id}" not in html
        assert 'id="open-conversation"' not in html
    auth.logout()
    auth.login(bob)
    assert "Bob&#39;s private note" in page(auth.client, f"/contacts/{contact_id}/timeline")


def test_with_agents_seeing_every_conversation_an_agent_reads_the_notes(app, auth, owner, database):
    from sigdesk.settings import services as settings

    bob = auth.create_user("agent", "bob@example.com")
    contact_id, _conversation_id = _assigned_note(database, bob.email)
    with database.session() as session:
        settings.set_value(session, app.extensions["sigdesk"].cipher, "inbox.agents_see_all", True)
        session.commit()
    signed_in_as(auth, "agent")
    html = page(auth.client, f"/contacts/{contact_id}")
    assert "Bob&#39;s private note" in html and 'id="open-conversation"' in html
    assert "Bob&#39;s private note" in page(auth.client, f"/contacts/{contact_id}/timeline")


def _any_segment(database) -> int:
    from sigdesk.segments.commands import create_segment

    with database.session() as session:
        segment = create_segment(
            session,
            Actor.system("cli"),
            "Berlin or Hamburg",
            {
                "match": "any",
                "conditions": [
                    {"field": "city", "op": "is", "value": "Berlin"},
                    {"field": "city", "op": "is", "value": "Hamburg"},
                ],
            },
        )
        session.commit()
        return segment.id


def test_a_segment_matching_any_and_more_conditions_is_not_exported_or_saved_with_fewer(app, auth, owner, database):
    from sigdesk.models import Segment

    segment_id = _any_segment(database)
    berlin_vip = add(database, city="Berlin", company="ACME")
    add(database, city="Hamburg")
    add(database, city="Munich", company="ACME")
    query = f"segment={segment_id}&f=company&o=is&v=ACME"
    html = page(auth.client, f"/contacts/?{query}")
    assert rows(html) == [berlin_vip]
    assert 'id="export-these"' not in html and "data-export-url" not in html
    refused = post(auth.client, "/contacts/segments", {"name": "ACME in B or H", "query": query}, "/contacts/")
    assert refused.status_code == 302
    shown = page(auth.client, refused.headers["Location"])
    assert "The segment was not saved" in shown and "matches any of several conditions" in shown
    with database.session() as session:
        assert session.scalar(select(Segment).where(Segment.name == "ACME in B or H")) is None
    # the page's own "any" on top of a segment is refused the same way
    query = f"segment={segment_id}&match=any&f=company&o=is&v=ACME&f=city&o=is&v=Munich"
    assert 'id="export-these"' not in page(auth.client, f"/contacts/?{query}")
    refused = post(auth.client, "/contacts/segments", {"name": "Mixed", "query": query}, "/contacts/")
    assert "matches any of several conditions" in page(auth.client, refused.headers["Location"])


def test_filters_that_combine_are_exported_and_saved_with_every_condition(app, auth, owner, database):
    from sigdesk.segments.services import definition_of

    segment_id = _any_segment(database)
    found = views.read_filter(views.url_decode(f"segment={segment_id}"))
    with database.session() as session:
        assert found.merged(session)["match"] == "any"
    berlin = add(database, city="Berlin", company="ACME")
    add(database, city="Berlin")
    query = "f=city&o=is&v=Berlin&f=company&o=is&v=ACME"
    html = page(auth.client, f"/contacts/?{query}")
    if views.EXPORT_ENDPOINT in app.view_functions:
        link = unquote(unescape(re.search(r'id="export-these" href="([^"]+)"', html).group(1)))
        assert "Berlin" in link and "ACME" in link
    saved = post(auth.client, "/contacts/segments", {"name": "Berlin ACME", "query": query}, "/contacts/")
    assert rows(page(auth.client, saved.headers["Location"])) == [berlin]
    new_id = int(re.search(r"segment=(\d+)", saved.headers["Location"]).group(1))
    with database.session() as session:
        assert len(definition_of(session, new_id).conditions) == 2


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity", "1,nan"])
def test_a_number_that_is_not_finite_is_refused_not_sent_to_the_database(app, auth, owner, database, value):
    add(database)
    assert 'id="filter-problem"' not in page(auth.client, "/contacts/?f=lead_score&o=gt&v=5")
    op = "between" if "," in value else "gt"
    assert views._typed_condition({"field": "lead_score", "op": op, "value": value})["value"] in (value, [1, "nan"])
    html = page(auth.client, f"/contacts/?f=lead_score&o={op}&v={value}")
    assert 'id="filter-problem"' in html and rows(html) == []
    assert auth.client.get(f"/contacts/?f=lead_score&o={op}&v={value}&fragment=table").status_code == 200


def test_a_contact_is_added_by_hand_from_the_contacts_page_and_a_refusal_keeps_what_was_typed(
    app, auth, owner, database
):
    html = page(auth.client, "/contacts/")
    assert 'id="add-contact-form"' in html and "No contacts yet" in html
    token = csrf_from(html)
    refused = auth.client.post(
        "/contacts/new", data={"csrf_token": token, "phone": "12", "name": "Rosa Rossi", "email": "rosa@example.com"}
    )
    page_ = refused.get_data(as_text=True)
    assert refused.status_code == 400 and 'id="add-contact-error"' in page_
    assert 'value="Rosa Rossi"' in page_ and 'value="rosa@example.com"' in page_
    with database.session() as session:
        assert session.scalar(select(Contact.id)) is None
    added = auth.client.post(
        "/contacts/new", data={"csrf_token": token, "phone": "+49 170 1234567", "name": "Rosa Rossi", "email": ""}
    )
    assert added.status_code == 302
    with database.session() as session:
        contact = session.scalar(select(Contact))
        assert (contact.wa_id, contact.display_name, contact.email) == ("491701234567", "Rosa Rossi", None)
    assert audit(app, "contact.created")
    again = auth.client.post("/contacts/new", data={"csrf_token": token, "phone": "+491701234567"})
    assert again.status_code == 409 and "Rosa Rossi" in unescape(again.get_data(as_text=True))
