from tests.conftest import PASSWORD

ADMIN_ENDPOINT_PREFIXES = ("admin.",)


def admin_only_routes(app):
    """Every route whose view needs more than what agents have: found from the app, not listed by hand."""
    from sigdesk.roles import can

    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        permission = getattr(view, "permission", None)
        if permission and permission != "public" and not can("agent", permission):
            method = next(verb for verb in ("POST", "DELETE", "PATCH", "PUT", "GET") if verb in rule.methods)
            path = rule.rule
            for argument in rule.arguments:  # ids are digits: a well-formed request, refused for its sender alone
                path = path.replace(f"<int:{argument}>", "1").replace(f"<{argument}>", "1")
            yield method, path, rule.endpoint


def test_every_admin_route_is_closed_to_agents(auth, client, owner, app):
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    token = auth.csrf("/account/")
    routes = list(admin_only_routes(app))
    assert len(routes) >= 8
    for method, path, endpoint in routes:
        response = client.open(path, method=method, data={"csrf_token": token})
        assert response.status_code == 403, f"{endpoint} {path} answered {response.status_code} to an agent"


def test_every_route_declares_who_may_use_it(app):
    from sigdesk.roles import ALL_PERMISSIONS

    for rule in app.url_map.iter_rules():
        permission = getattr(app.view_functions[rule.endpoint], "permission", None)
        assert permission == "public" or permission in ALL_PERMISSIONS, f"{rule.endpoint} declares no permission"


def test_admin_adds_deactivates_and_changes_roles(auth, client, owner, app):
    response = auth.post(
        "/admin/team",
        {"email": "new@example.com", "name": "Nina", "role": "agent", "password": PASSWORD},
        form_page="/admin/team",
    )
    assert response.status_code == 302
    page = client.get("/admin/team").get_data(as_text=True)
    assert "new@example.com" in page and "Nina can now sign in" in page
    from sigdesk.models import User

    with app.extensions["sigdesk"].database.session() as session:
        nina = session.query(User).filter_by(email="new@example.com").one()
    auth.post(f"/admin/team/{nina.id}/role", {"role": "admin"}, form_page="/admin/team")
    auth.post(f"/admin/team/{nina.id}/deactivate", form_page="/admin/team")
    with app.extensions["sigdesk"].database.session() as session:
        nina = session.get(User, nina.id)
        assert nina.role == "admin" and not nina.is_active
    audit = client.get("/admin/audit").get_data(as_text=True)
    for action in ("team.user_added", "team.role_changed", "team.user_deactivated"):
        assert action in audit


def test_team_errors_are_shown_and_change_nothing(auth, client, owner):
    response = auth.post(
        "/admin/team",
        {"email": "bad", "name": "X", "role": "agent", "password": PASSWORD},
        form_page="/admin/team",
        follow_redirects=True,
    )
    assert "Enter a valid email address" in response.get_data(as_text=True)
    response = auth.post("/admin/team/1/deactivate", form_page="/admin/team", follow_redirects=True)
    assert "cannot deactivate yourself" in response.get_data(as_text=True)
    assert auth.post("/admin/team/999/deactivate", form_page="/admin/team").status_code == 404


def test_admin_cannot_change_an_owner(auth, client, owner, app):
    admin = auth.create_user("admin")
    auth.logout()
    auth.login(admin)
    response = auth.post("/admin/team/1/role", {"role": "agent"}, form_page="/admin/team", follow_redirects=True)
    assert "not allowed" in response.get_data(as_text=True)
    from sigdesk.models import User

    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(User, 1).role == "owner"


def test_reset_two_factor_lets_the_user_sign_in_with_password_again(auth, client, owner, app):
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    auth.enrol_totp(agent)
    auth.logout()
    auth.login(owner)
    from sigdesk.models import User

    with app.extensions["sigdesk"].database.session() as session:
        agent_id = session.query(User).filter_by(email=agent.email).one().id
    auth.post(f"/admin/team/{agent_id}/reset-2fa", form_page="/admin/team")
    auth.logout()
    response = auth.post("/login", {"email": agent.email, "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_audit_log_lists_logins_and_settings_changes_with_filters(auth, client, owner):
    auth.logout()
    auth.post("/login", {"email": owner.email, "password": "wrong password"})
    auth.login(owner)
    auth.post(
        "/admin/settings",
        {"general.business_name": "Bakery", "server.allowed_networks": "127.0.0.1/32"},
        form_page="/admin/settings",
    )
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "settings.changed" in page and "general.business_name" in page
    assert "wrong_password" in page
    assert "Werkzeug" in page or "werkzeug" in page
    filtered = client.get("/admin/audit?action=settings.changed&outcome=failed").get_data(as_text=True)
    assert "login.failed" not in filtered.split('id="audit-events"')[1].split("</table>")[0]
    assert client.get("/admin/audit?since=yesterday").status_code == 400


def test_bad_settings_are_refused_with_a_message_and_nothing_changes(auth, client, owner):
    response = auth.post(
        "/admin/settings",
        {"general.business_name": "Bakery", "server.allowed_networks": "10.0.0.0/8, not-a-network"},
        form_page="/admin/settings",
    )
    assert response.status_code == 400
    assert "not an IP address or CIDR network" in response.get_data(as_text=True)
    assert "Bakery" not in client.get("/admin/settings").get_data(as_text=True)


def test_admins_do_not_see_owner_only_settings(auth, client, owner):
    admin = auth.create_user("admin")
    auth.logout()
    auth.login(admin)
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "security.require_2fa" not in page


def test_saving_without_a_change_says_so_as_information_not_success(auth, client, owner):
    form = {"server.allowed_networks": "127.0.0.1/32"}
    saved = auth.post("/admin/settings", form, form_page="/admin/settings", follow_redirects=True)
    assert 'data-category="success">Settings saved.' in saved.get_data(as_text=True)
    again = auth.post("/admin/settings", form, form_page="/admin/settings", follow_redirects=True)
    assert 'data-category="info">Nothing changed.' in again.get_data(as_text=True)


def test_a_refused_add_keeps_everything_typed_but_the_password(auth, client, owner):
    typed = {"email": "nina@example.com", "name": "Nina Näher", "role": "admin", "password": PASSWORD}
    assert auth.post("/admin/team", typed, form_page="/admin/team").status_code == 302
    response = auth.post("/admin/team", {**typed, "name": "Nina Again"}, form_page="/admin/team")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and 'role="alert"' in page and "already exists" in page
    assert 'name="name" value="Nina Again"' in page and 'value="nina@example.com"' in page
    assert '<option value="admin" selected>' in page and PASSWORD not in page


def test_the_settings_page_refuses_an_allow_list_that_locks_out_the_address_saving_it(auth, client, owner):
    office = {"REMOTE_ADDR": "192.168.1.20"}
    response = auth.post(
        "/admin/settings",
        {"general.business_name": "", "server.allowed_networks": "10.0.0.0/8"},
        form_page="/admin/settings",
        environ_base=office,
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "leaves out 192.168.1.20, the address you are using now" in page
    assert 'name="server.allowed_networks"' in page and "10.0.0.0/8" in page  # what was typed comes back
    assert client.get("/admin/settings", environ_base=office).status_code == 200  # nothing was saved
    saved = auth.post(
        "/admin/settings",
        {"general.business_name": "", "server.allowed_networks": "192.168.1.0/24"},
        form_page="/admin/settings",
        environ_base=office,
    )
    assert saved.status_code == 302
    assert client.get("/admin/settings", environ_base=office).status_code == 200


def test_the_settings_page_asks_the_roles_which_settings_a_role_may_change():
    """roles.py is the one place that decides what a role may do: no role names compared here."""
    import inspect

    from sigdesk.admin import views

    source = inspect.getsource(views.general_settings)
    assert "Role." not in source and '"owner"' not in source


def test_the_allow_list_hint_says_only_the_desktop_window_is_always_let_in(auth, client, owner):
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "is always allowed" not in page
    assert "The desktop window (sigdesk desktop) is always let in" in page
    assert "a browser on this computer against sigdesk serve follows this list" in page
