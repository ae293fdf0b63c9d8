"""Admin → Exports over real requests: downloads parse back, contact data and anonymising."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from sqlalchemy import select

from sigdesk.models import AuditEvent, Contact
from tests.backup.seed import seed
from tests.conftest import csrf_from


def token(auth) -> str:
    return csrf_from(auth.client.get("/admin/exports/").get_data(as_text=True))


def test_admins_download_csv_and_zip_exports_that_parse_back(app, auth, owner):
    seed(app)
    response = auth.client.post(
        "/admin/exports/download", data={"csrf_token": token(auth), "what": "contacts", "format": "csv", "bom": "1"}
    )
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [row["wa_id"] for row in rows] == ["447700900000", "447700900001", "447700900002"]
    everything = auth.client.post(
        "/admin/exports/download", data={"csrf_token": token(auth), "what": "all", "format": "json"}
    )
    with zipfile.ZipFile(io.BytesIO(everything.data)) as archive:
        assert len(archive.read("messages.jsonl").decode().splitlines()) == 42
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert auth.client.get("/admin/exports/").status_code == 403


def test_bad_choices_are_a_clear_400(auth, owner):
    response = auth.client.post(
        "/admin/exports/download", data={"csrf_token": token(auth), "what": "orders", "format": "csv"}
    )
    assert response.status_code == 400 and "no orders" in response.get_data(as_text=True)


def test_contact_download_and_anonymise(app, auth, owner):
    seed(app)
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = session.scalars(select(Contact.id).order_by(Contact.id)).first()
    zipped = auth.client.post("/admin/exports/contact", data={"csrf_token": token(auth), "contact_id": str(contact_id)})
    with zipfile.ZipFile(io.BytesIO(zipped.data)) as archive:
        assert json.loads(archive.read("contact.json"))["contact"][0]["id"] == contact_id
    unconfirmed = auth.client.post(
        "/admin/exports/contact/anonymise", data={"csrf_token": token(auth), "contact_id": str(contact_id)}
    )
    assert unconfirmed.status_code == 400
    done = auth.client.post(
        "/admin/exports/contact/anonymise",
        data={"csrf_token": token(auth), "contact_id": str(contact_id), "confirm": "ANONYMISE"},
        follow_redirects=True,
    )
    assert "anonymised; 5 media files deleted" in done.get_data(as_text=True)
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(Contact, contact_id).wa_id is None
        assert (
            session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.anonymised")).one().actor_email
            == owner.email
        )
    missing = auth.client.post("/admin/exports/contact", data={"csrf_token": token(auth), "contact_id": "999"})
    assert missing.status_code == 404
