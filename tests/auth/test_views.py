from tests.conftest import PASSWORD


def test_first_run_redirects_every_page_to_setup(client):
    for path in ("/", "/login", "/admin/team", "/account/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/setup")


def test_setup_creates_owner_and_signs_in(auth, client):
    auth.setup_owner()
    home = client.get("/")
    assert home.status_code == 200
    assert "Olive Owner" in home.get_data(as_text=True)


def test_setup_is_gone_once_an_owner_exists(auth, client):
    auth.setup_owner()
    auth.logout()
    response = client.get("/setup")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_login_with_totp_after_enrolment(auth, client, owner):
    codes = auth.enrol_totp(owner)
    assert len(codes) == 10
    auth.logout()
    response = auth.post("/login", {"email": owner.email, "password": PASSWORD})
    assert "/login/verify" in response.headers["Location"]
    assert client.get("/").status_code == 302
    response = auth.post("/login/verify", {"code": owner.totp(1)}, form_page="/login/verify")
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_wrong_password_is_refused_and_recorded(auth, client, owner, app):
    auth.logout()
    response = auth.post("/login", {"email": owner.email, "password": "wrong password!"})
    assert response.status_code == 401
    assert "Wrong email or password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    from sigdesk.audit.services import list_logins

    with app.extensions["sigdesk"].database.session() as session:
        failed = list_logins(session, success=False)
        assert failed[0].email == owner.email and failed[0].reason == "wrong_password"


def test_wrong_totp_code_is_refused(auth, client, owner):
    auth.enrol_totp(owner)
    auth.logout()
    auth.post("/login", {"email": owner.email, "password": PASSWORD})
    response = auth.post("/login/verify", {"code": "000000"}, form_page="/login/verify")
    assert response.status_code == 401
    assert client.get("/").status_code == 302


def test_a_recovery_code_signs_in_once(auth, client, owner):
    codes = auth.enrol_totp(owner)
    auth.logout()
    assert auth.login(owner, code=codes[0]).status_code == 302
    assert client.get("/").status_code == 200
    auth.logout()
    response = auth.login(owner, code=codes[0])
    assert response.status_code == 401
    assert "codes work once" in response.get_data(as_text=True)


def test_login_is_rate_limited_with_a_clear_page(auth, client, owner):
    auth.logout()
    statuses = [auth.post("/login", {"email": owner.email, "password": "nope"}).status_code for _ in range(11)]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    page = auth.post("/login", {"email": owner.email, "password": PASSWORD})
    assert page.status_code == 429
    assert "Too many attempts" in page.get_data(as_text=True)


def test_deactivated_users_cannot_sign_in(auth, client, owner):
    agent = auth.create_user("agent")
    from sigdesk.models import User

    with auth.app.extensions["sigdesk"].database.session() as session:
        session.query(User).filter_by(email=agent.email).one().is_active = False
    auth.logout()
    response = auth.login(agent)
    assert response.status_code == 401 and "deactivated" in response.get_data(as_text=True)


def test_session_cookie_is_httponly_and_samesite_lax(auth, client):
    response = auth.post(
        "/setup", {"email": "o@example.com", "name": "O", "password": PASSWORD, "password_confirm": PASSWORD}
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_forms_without_csrf_token_are_refused(auth, client, owner):
    auth.logout()
    response = client.post("/login", data={"email": owner.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "Security check failed" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_does_not_redirect_off_site(auth, client, owner):
    auth.logout()
    response = auth.post("/login?next=//evil.example.com/x", {"email": owner.email, "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_owner_can_require_two_factor_for_everyone(auth, client, owner):
    agent = auth.create_user("agent")
    refused = auth.post(
        "/admin/settings",
        {"security.require_2fa": "true", "server.allowed_networks": "127.0.0.1"},
        form_page="/admin/settings",
    )
    assert refused.status_code == 400 and "for your own account first" in refused.get_data(as_text=True)
    auth.enrol_totp(owner)
    response = auth.post(
        "/admin/settings",
        {"security.require_2fa": "true", "server.allowed_networks": "127.0.0.1", "general.business_name": ""},
        form_page="/admin/settings",
    )
    assert response.status_code == 302
    auth.logout()
    auth.login(agent)
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/two-factor")
    auth.enrol_totp(agent)
    assert client.get("/").status_code == 200


def test_setup_refuses_a_common_password_with_zxcvbns_advice(auth, client):
    response = auth.post(
        "/setup", {"email": "o@example.com", "name": "O", "password": "password123", "password_confirm": "password123"}
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "too easy to guess" in page and "very common password" in page
    assert client.get("/").headers["Location"].endswith("/setup")


def test_setup_refuses_mismatched_passwords(auth, client):
    response = auth.post(
        "/setup", {"email": "o@example.com", "name": "O", "password": PASSWORD, "password_confirm": PASSWORD + "x"}
    )
    assert response.status_code == 400
    assert "do not match" in response.get_data(as_text=True)
    assert client.get("/").headers["Location"].endswith("/setup")
