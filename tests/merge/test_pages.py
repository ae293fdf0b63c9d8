"""Settings → Duplicates: admins see the suggested pairs, review one with a radio per conflicting field,
merge it (a flash says what happened) or mark it as not duplicates; agents cannot open it."""

from __future__ import annotations

import pytest

from sigdesk.models import Contact
from tests import factories
from tests.commanding import audit
from tests.conftest import csrf_from

pytestmark = pytest.mark.database


@pytest.fixture
def admin_client(auth, owner):
    return auth.client


@pytest.fixture
def pair(app) -> tuple[int, int]:
    with app.extensions["sigdesk"].database.session() as session:
        kept = factories.contact(session, name="Ana Souza", email="ana@example.com", city="Lisbon")
        merged = factories.contact(session, name="Ana Souza", email="ana@example.com", city="Porto")
        factories.message(session, factories.conversation(session, merged), text="hi")
        session.commit()
        return kept.id, merged.id


def test_admins_find_the_duplicates_page_in_settings_with_the_pairs_and_why(admin_client, pair):
    page = admin_client.get("/admin/duplicates").get_data(as_text=True)
    assert 'data-setting="duplicates"' in page and 'aria-current="page">Duplicates<' in page
    assert f'data-pair="{pair[0]}-{pair[1]}"' in page and "Same email" in page and "Same name" in page
    assert "Review and merge" in page and "Not duplicates" in page


def test_the_review_has_a_radio_per_conflicting_field_and_merging_flashes_what_happened(app, admin_client, pair):
    kept_id, merged_id = pair
    review = admin_client.get(f"/admin/duplicates/review?keep={kept_id}&merge={merged_id}").get_data(as_text=True)
    assert 'name="pick:city" value="keep" checked' in review and 'name="pick:city" value="merge"' in review
    assert 'name="pick:email"' not in review, "equal values need no pick"
    assert "1 conversation with 1 message" in review
    done = admin_client.post(
        "/admin/duplicates/merge",
        data={"keep": kept_id, "merge": merged_id, "pick:city": "merge", "csrf_token": csrf_from(review)},
    )
    assert done.status_code == 302
    page = admin_client.get("/admin/duplicates").get_data(as_text=True)
    assert f"Merged contact {merged_id} into contact {kept_id}: 1 conversation, 1 message" in page
    assert "No duplicates found" in page and "1 message," in page
    name = app.config["SESSION_COOKIE_NAME"] + "="
    cookie = next(value for value in done.headers.getlist("Set-Cookie") if value.startswith(name))
    stored = app.session_interface.get_signing_serializer(app).loads(cookie.split(";")[0].removeprefix(name))
    assert "Souza" not in str(stored), "the flash travels in the session cookie: no names in it"
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(Contact, merged_id) is None and session.get(Contact, kept_id).city == "Porto"
    assert [entry.channel for entry in audit(app, "contact.merged")] == ["web"]


def test_a_bad_pick_comes_back_on_the_review_and_loses_nothing(app, admin_client, pair):
    kept_id, merged_id = pair
    review = admin_client.get(f"/admin/duplicates/review?keep={kept_id}&merge={merged_id}").get_data(as_text=True)
    refused = admin_client.post(
        "/admin/duplicates/merge",
        data={"keep": kept_id, "merge": merged_id, "pick:city": "both", "csrf_token": csrf_from(review)},
    )
    assert refused.status_code == 400 and "must be &#39;keep&#39; or &#39;merge&#39;" in refused.get_data(as_text=True)
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(Contact, merged_id) is not None


def test_a_merge_into_itself_is_refused_with_a_clear_message(admin_client, pair):
    kept_id, _ = pair
    page = admin_client.get(f"/admin/duplicates/review?keep={kept_id}&merge={kept_id}")
    assert page.status_code == 422 and "cannot be merged into itself" in page.get_data(as_text=True)
    token = csrf_from(admin_client.get("/admin/duplicates").get_data(as_text=True))
    posted = admin_client.post("/admin/duplicates/merge", data={"keep": kept_id, "merge": kept_id, "csrf_token": token})
    assert posted.status_code == 422 and "cannot be merged into itself" in posted.get_data(as_text=True)
    bad = admin_client.get("/admin/duplicates/review?keep=x&merge=1")
    assert bad.status_code == 400 and "&#39;keep&#39; must be a contact" in bad.get_data(as_text=True)


def test_not_duplicates_takes_the_pair_off_the_list(admin_client, pair):
    token = csrf_from(admin_client.get("/admin/duplicates").get_data(as_text=True))
    done = admin_client.post(
        "/admin/duplicates/dismiss", data={"first_id": pair[0], "second_id": pair[1], "csrf_token": token}
    )
    assert done.status_code == 302
    page = admin_client.get("/admin/duplicates").get_data(as_text=True)
    assert "no longer suggested" in page and f'data-pair="{pair[0]}-{pair[1]}"' not in page


def test_agents_cannot_open_the_duplicates_page(app, auth, owner, pair):
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert auth.client.get("/admin/duplicates").status_code == 403
    assert 'data-setting="duplicates"' not in auth.client.get("/").get_data(as_text=True)
