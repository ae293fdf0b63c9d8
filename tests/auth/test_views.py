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
