"""Settings → Tags and Settings → Stages: admins manage the lists with CSRF-checked forms; a refused form
comes back with its message and what was typed; agents see neither page."""

from __future__ import annotations

import pytest

from sigdesk.lifecycle import commands, services
from tests import factories
from tests.commanding import audit
from tests.conftest import csrf_from
from tests.lifecycle.helpers import actor, clear_stages, stage, tag

pytestmark = pytest.mark.database


@pytest.fixture
def admin_client(app, auth, owner):
    clear_stages(app.extensions["sigdesk"].database)
    return auth.client


def _post(client, path: str, data: dict, page: str):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def test_settings_lists_tags_and_stages_for_admins(admin_client):
    page = admin_client.get("/admin/tags").get_data(as_text=True)
    assert 'data-setting="tags"' in page and 'data-setting="stages"' in page
    assert 'aria-current="page">Tags<' in page


def test_an_admin_adds_renames_recolours_and_deletes_a_tag(app, admin_client):
    done = _post(admin_client, "/admin/tags", {"name": "VIP", "color": "3"}, "/admin/tags")
    assert done.status_code == 302
    page = admin_client.get("/admin/tags").get_data(as_text=True)
    assert "Added the tag VIP." in page and '<span class="label l3">VIP</span>' in page
    with app.extensions["sigdesk"].database.session() as session:
        tag_id = services.find_tag(session, "vip").id
    assert (
        _post(admin_client, f"/admin/tags/{tag_id}", {"name": "Gold", "color": "5"}, "/admin/tags").status_code == 302
    )
    assert '<span class="label l5">Gold</span>' in admin_client.get("/admin/tags").get_data(as_text=True)
    assert _post(admin_client, f"/admin/tags/{tag_id}/delete", {}, "/admin/tags").status_code == 302
    assert "Gold" not in admin_client.get("/admin/tags").get_data(as_text=True)
    assert [e.channel for e in audit(app, "tag.delete")] == ["web"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "   ", "color": "1"}, "A tag name is 1 to 64 characters"),
        ({"name": "vip", "color": ""}, "There already is a tag"),
        ({"name": "Fresh <b>", "color": "9"}, "one of the palette"),
        ({"name": "Fresh <b>", "color": "red"}, "'color' must be a whole number"),
    ],
)
def test_a_refused_tag_form_comes_back_with_what_was_typed(app, admin_client, data, message):
    with app.extensions["sigdesk"].database.session() as session:
        tag(session, "VIP")
        session.commit()
    refused = _post(admin_client, "/admin/tags", data, "/admin/tags")
    page = refused.get_data(as_text=True)
    assert refused.status_code in (400, 409)
    assert 'id="tag-new-error"' in page and message in page.replace("&#39;", "'")
    if data["name"].strip():
        assert f'value="{data["name"]}"'.replace("<", "&lt;").replace(">", "&gt;") in page


def test_forms_without_the_csrf_token_are_refused(admin_client):
    assert admin_client.post("/admin/tags", data={"name": "VIP"}).status_code == 400
    assert admin_client.post("/admin/stages", data={"name": "Lead"}).status_code == 400


def test_agents_may_open_neither_page(app, auth, owner):
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert auth.client.get("/admin/tags").status_code == 403
    assert auth.client.get("/admin/stages").status_code == 403
    page = auth.client.get("/account/").get_data(as_text=True)
    assert 'data-setting="tags"' not in page and 'data-setting="stages"' not in page


def test_an_admin_adds_moves_renames_and_deletes_stages(app, admin_client):
    for name in ("Lead", "Won", "Lost"):
        assert _post(admin_client, "/admin/stages", {"name": name}, "/admin/stages").status_code == 302
    with app.extensions["sigdesk"].database.session() as session:
        lost = services.find_stage(session, "Lost").id
    assert (
        _post(admin_client, f"/admin/stages/{lost}", {"name": "Gone", "position": "1"}, "/admin/stages").status_code
        == 302
    )
    with app.extensions["sigdesk"].database.session() as session:
        assert [s.name for s in services.list_stages(session)] == ["Gone", "Lead", "Won"]
    assert _post(admin_client, f"/admin/stages/{lost}/move", {"position": "3"}, "/admin/stages").status_code == 302
    assert _post(admin_client, f"/admin/stages/{lost}/delete", {}, "/admin/stages").status_code == 302
    with app.extensions["sigdesk"].database.session() as session:
        assert [s.name for s in services.list_stages(session)] == ["Lead", "Won"]


def test_deleting_a_stage_in_use_asks_for_a_replacement_on_the_page(app, admin_client):
    with app.extensions["sigdesk"].database.session() as session:
        lead, won = stage(session, "Lead"), stage(session, "Won")
        commands.set_stage(session, actor(session), factories.contact(session).id, lead.id)
        session.commit()
        lead_id, won_id = lead.id, won.id
    page = admin_client.get("/admin/stages").get_data(as_text=True)
    assert "Move its contacts to" in page
    refused = _post(admin_client, f"/admin/stages/{lead_id}/delete", {"replacement_id": ""}, "/admin/stages")
    assert refused.status_code == 409
    assert "choose a replacement stage" in refused.get_data(as_text=True)
    assert f'id="stage-delete-{lead_id}-error"' in refused.get_data(as_text=True)
    done = _post(admin_client, f"/admin/stages/{lead_id}/delete", {"replacement_id": str(won_id)}, "/admin/stages")
    assert done.status_code == 302
    assert "1 contact(s) moved" in admin_client.get("/admin/stages").get_data(as_text=True)


def test_a_refused_stage_rename_keeps_what_was_typed(app, admin_client):
    with app.extensions["sigdesk"].database.session() as session:
        lead, _ = stage(session, "Lead"), stage(session, "Won")
        session.commit()
        lead_id = lead.id
    refused = _post(admin_client, f"/admin/stages/{lead_id}", {"name": "won", "position": "1"}, "/admin/stages")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "There already is a stage" in page and 'value="won"' in page
    refused = _post(admin_client, f"/admin/stages/{lead_id}", {"name": "Lead", "position": "7"}, "/admin/stages")
    assert refused.status_code == 400 and "from 1 to 2" in refused.get_data(as_text=True)
