from sigdesk.models import Template
from tests.outbound.test_sending import connect


def test_admin_syncs_templates_from_meta(app, auth, client, owner, fake_graph):
    connect(app, fake_graph)
    fake_graph.templates = [
        {
            "id": "1",
            "name": "order_ready",
            "language": "en_US",
            "status": "APPROVED",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} is ready"}],
        },
        {
            "id": "2",
            "name": "spring_sale",
            "language": "de",
            "status": "REJECTED",
            "category": "MARKETING",
            "rejected_reason": "PROMOTIONAL",
            "components": [],
        },
        {
            "id": "3",
            "name": "welcome",
            "language": "en_US",
            "status": "PENDING",
            "category": "UTILITY",
            "components": [],
        },
    ]
    response = auth.post("/admin/templates/sync", form_page="/admin/templates/", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "3 templates synced" in page and "order_ready" in page and "PROMOTIONAL" in page and "body: 2" in page
    api = client.get("/api/v1/templates").get_json()["items"]
    assert {t["name"] for t in api} == {"order_ready", "spring_sale", "welcome"}
    fake_graph.templates = fake_graph.templates[:1]
    auth.post("/admin/templates/sync", form_page="/admin/templates/")
    with app.extensions["sigdesk"].database.session() as session:
        assert session.query(Template).filter_by(name="welcome").one().status == "DELETED"


def test_sync_errors_are_shown_in_words(app, auth, client, owner, fake_graph):
    page = auth.post("/admin/templates/sync", form_page="/admin/templates/", follow_redirects=True).get_data(
        as_text=True
    )
    assert "not connected yet" in page
    connect(app, fake_graph)
    fake_graph.fail_next(190, 401)
    page = auth.post("/admin/templates/sync", form_page="/admin/templates/", follow_redirects=True).get_data(
        as_text=True
    )
    assert "access token has expired" in page


def test_a_malformed_stored_template_is_listed_with_a_note_not_a_crash(app, client, owner):
    with app.extensions["sigdesk"].database.session() as session:
        session.add(
            Template(
                name="spaced",
                language="en",
                status="APPROVED",
                components='[{"type": "BODY", "text": "Hi {{ 1 }}, order {{2}}"}]',
            )
        )
        session.add(Template(name="broken_json", language="en", status="APPROVED", components="{not json"))
        session.add(
            Template(
                name="named_ok",
                language="en",
                status="APPROVED",
                components='[{"type": "BODY", "text": "Hi {{first_name}}"}]',
            )
        )
        session.commit()
    page = client.get("/admin/templates/").get_data(as_text=True)
    assert "Cannot be sent: The template&#39;s body has a malformed variable" in page
    assert "not valid JSON" in page and "body: 1" in page
