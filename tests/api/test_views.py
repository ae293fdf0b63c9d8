import pytest

from sigdesk.auth import services as accounts


@pytest.fixture
def token(app, owner):
    with app.extensions["sigdesk"].database.session() as session:
        user = accounts.find_user(session, owner.email)
        return accounts.create_api_token(session, user, "tests")


def test_me_answers_for_a_token(client, token, owner):
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json()["email"] == owner.email
    assert response.get_json()["role"] == "owner"


def test_api_without_a_token_is_401_json(app, owner):
    fresh = app.test_client()
    response = fresh.get("/api/v1/me")
    assert response.status_code == 401
    assert "Bearer" in response.get_json()["error"]


def test_a_wrong_token_is_401(app, owner):
    response = app.test_client().get("/api/v1/me", headers={"Authorization": "Bearer sdk_wrong"})
    assert response.status_code == 401


def test_token_requests_do_not_start_a_browser_session(app, token):
    fresh = app.test_client()
    fresh.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert fresh.get("/").status_code == 302


def test_tokens_of_deactivated_users_stop_working(app, token, owner, auth):
    from sigdesk.models import User

    with app.extensions["sigdesk"].database.session() as session:
        session.query(User).filter_by(email=owner.email).one().is_active = False
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_openapi_document_describes_the_api(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert "/me" in doc["paths"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_openapi_paths_match_the_routes(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    routes = {
        rule.rule.removeprefix("/api/v1").replace("<int:", "{").replace("<", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "api.openapi"
    }
    assert routes == set(doc["paths"])


def test_token_is_created_in_the_account_page_and_shown_once(auth, client, owner):
    response = auth.post("/account/tokens", {"name": "zapier"}, form_page="/account/")
    page = response.get_data(as_text=True)
    import re

    token = re.search(r'id="api-token" class="secret">([^<]+)<', page).group(1)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert token not in client.get("/account/").get_data(as_text=True)


def test_agents_see_their_own_and_unassigned_conversations_only(app, auth, owner):
    from sigdesk.models import Contact, Conversation, User

    agent = auth.create_user("agent")
    with app.extensions["sigdesk"].database.session() as session:
        me = session.query(User).filter_by(email=agent.email).one()
        boss = session.query(User).filter_by(email=owner.email).one()
        ids = {}
        for name, assignee in (("mine", me.id), ("free", None), ("theirs", boss.id)):
            contact = Contact(wa_id=f"1555000{len(ids)}", profile_name=name)
            session.add(contact)
            session.flush()
            conversation = Conversation(contact_id=contact.id, assignee_id=assignee)
            session.add(conversation)
            session.flush()
            ids[name] = conversation.id
        token = accounts.create_api_token(session, me, "agent")
        owner_token = accounts.create_api_token(session, boss, "owner")
    client = app.test_client()
    seen = {
        c["contact"]["name"]
        for c in client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
    }
    assert seen == {"mine", "free"}
    hidden = client.get(f"/api/v1/conversations/{ids['theirs']}/messages", headers={"Authorization": f"Bearer {token}"})
    assert hidden.status_code == 404
    everything = client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {owner_token}"}).get_json()[
        "items"
    ]
    assert len(everything) == 3


def test_bad_paging_arguments_are_400(app, token):
    response = app.test_client().get("/api/v1/conversations?limit=0", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and "limit" in response.get_json()["error"]
