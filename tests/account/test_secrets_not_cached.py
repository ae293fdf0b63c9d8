"""Pages that show a secret once, and every API answer, tell browsers and proxies not to keep them."""

from __future__ import annotations

import re

import pytest

from sigdesk.auth.services import find_user
from tests.factories import api_token

pytestmark = pytest.mark.database


def test_a_new_api_token_page_is_not_stored(auth, owner):
    response = auth.post("/account/tokens", {"name": "shop"}, form_page="/account/")
    assert "sdk_" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


def test_the_totp_key_and_recovery_code_pages_are_not_stored(auth, client, owner):
    enrolment = client.get("/account/two-factor")
    assert 'id="totp-secret"' in enrolment.get_data(as_text=True)
    assert enrolment.headers["Cache-Control"] == "no-store"
    auth.enrol_totp(owner)
    codes = auth.post("/account/recovery-codes", {"password": owner.password}, form_page="/account/")
    assert re.search(r"[0-9A-F]{5}-[0-9A-F]{5}", codes.get_data(as_text=True))
    assert codes.headers["Cache-Control"] == "no-store"


def test_the_new_verify_token_page_is_not_stored(auth, owner):
    response = auth.post("/admin/whatsapp/verify-token", form_page="/admin/whatsapp/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_api_answers_are_not_stored(app, client, owner):
    with app.extensions["sigdesk"].database.session() as session:
        token = api_token(session, find_user(session, owner.email))
    fresh = app.test_client()
    me = fresh.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.headers["Cache-Control"] == "no-store"
    refused = fresh.get("/api/v1/me")
    assert refused.status_code == 401 and refused.headers["Cache-Control"] == "no-store"


def test_signed_in_pages_are_not_stored_but_static_files_keep_their_caching(client, owner):
    assert client.get("/account/").headers["Cache-Control"] == "no-store"
    assert client.get("/static/css/app.css").headers.get("Cache-Control") != "no-store"
