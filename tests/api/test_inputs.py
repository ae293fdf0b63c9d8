"""Inputs outside what the document declares are refused with 400 naming the field, never a 500."""

import pytest

from sigdesk.auth import services as accounts
from sigdesk.models import User


@pytest.fixture
def api(app):
    """A client with no browser session: the token alone signs it in (and POSTs need no CSRF token)."""
    return app.test_client()


@pytest.fixture
def headers(app, owner):
    with app.extensions["sigdesk"].database.session() as session:
        token = accounts.create_api_token(session, session.query(User).filter_by(email=owner.email).one(), "tests")
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("value", ["²", "١٢", "0", "-1", "1.0", "1_0", " 5", str(2**53), str(2**63), "9" * 400])
def test_limits_that_are_not_small_ascii_whole_numbers_are_400(api, headers, value):
    response = api.get("/api/v1/conversations", query_string={"limit": value}, headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["field"] == "limit"


@pytest.mark.parametrize("value", ["²", "١", "0", str(2**53), str(2**63), str(2**64)])
def test_path_ids_out_of_bounds_or_in_other_digits_are_400(api, headers, value):
    for response in (
        api.get(f"/api/v1/conversations/{value}/messages", headers=headers),
        api.post(f"/api/v1/conversations/{value}/read", headers=headers),
        api.post(f"/api/v1/conversations/1/messages/{value}/retry", headers=headers),
    ):
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.get_json()["field"] in ("conversation_id", "message_id")


def test_a_missing_conversation_is_404(api, headers):
    response = api.get(f"/api/v1/conversations/{2**53 - 1}/messages", headers=headers)
    assert response.status_code == 404


@pytest.mark.parametrize("body", ['{"text": "\\ud800"}', '{"type": "image", "image": {"link": "\\udfff"}}'])
def test_lone_surrogates_in_json_are_400_naming_the_field(api, headers, body):
    response = api.post("/api/v1/conversations/1/messages", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["field"] in ("text", "image")


@pytest.mark.parametrize(
    "body, field",
    [
        ('{"text": 5}', "text"),
        ('{"text": "hi", "preview_url": "yes"}', "preview_url"),
        ('{"type": "teleport"}', "type"),
        ('{"type": "image"}', "image"),
        ("[]", "body"),
        ("not json", "body"),
        ('{"text": "hi", "reply_to": ""}', "reply_to"),
    ],
)
def test_malformed_send_bodies_are_400_naming_the_field(api, headers, body, field):
    response = api.post("/api/v1/conversations/1/messages", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["field"] == field


def test_search_limits_are_bounded_too(api, headers):
    response = api.get("/api/v1/search", query_string={"q": "hi", "limit": "²"}, headers=headers)
    assert response.status_code == 400 and response.get_json()["field"] == "limit"


def test_the_document_declares_the_bounds(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    parameters = {p["name"]: p for p in doc["paths"]["/conversations/{conversation_id}/messages"]["get"]["parameters"]}
    assert parameters["conversation_id"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**53 - 1}
    assert parameters["limit"]["schema"]["maximum"] == 200
    assert doc["components"]["schemas"]["Error"]["required"] == ["error", "status"]


def test_an_upload_without_its_type_is_400_naming_type(api, headers):
    import io

    response = api.post(
        "/api/v1/media",
        data={"file": (io.BytesIO(b"\x89PNG"), "a.png")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["field"] == "type"
