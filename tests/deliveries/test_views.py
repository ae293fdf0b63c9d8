import json

from tests import factories
from tests.outbound.test_sending import connect
from tests.media.test_views import deliver


def test_admins_see_refused_signatures_failures_and_account_updates(app, client, auth, owner, fake_graph):
    connect(app, fake_graph)
    client.post("/webhooks/whatsapp", data=b"{}", headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
    deliver(app, client, b"[1, 2, 3]")
    update = factories.webhook({"phone_number": "15550100199", "event": "VERIFIED_ACCOUNT"}, field="account_update")
    deliver(app, client, json.dumps(update).encode())
    app.extensions["sigdesk"].worker.run_once()  # refusals are counted in memory; the worker writes the count
    page = client.get("/admin/webhooks/").get_data(as_text=True)
    assert "refused signatures: 1" in page and "app secret" in page
    assert "quarantined" in page and "account_update" in page and "VERIFIED_ACCOUNT" in page


def test_agents_cannot_see_the_webhook_page(app, client, auth, owner):
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert client.get("/admin/webhooks/").status_code == 403
