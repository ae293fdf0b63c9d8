"""The contact imports API: upload with a mapping, follow the job, read the refused rows, undo; bad input is a
4xx naming the field, and the page's upload limit holds here too."""

from __future__ import annotations

import io
import json

import pytest

from tests.commanding import audit
from tests.imports.helpers import finish
from tests.lifecycle.helpers import Api

pytestmark = pytest.mark.database


@pytest.fixture
def admin(app):
    return Api.of(app, "admin")


def upload(api: Api, name: str, data: bytes, **fields):
    form = {"file": (io.BytesIO(data), name), **{key: str(value) for key, value in fields.items()}}
    return api.client.post(
        "/api/v1/contact-imports",
        data=form,
        headers={"Authorization": f"Bearer {api.token}"},
        content_type="multipart/form-data",
    )


def test_an_import_through_the_api(app, admin):
    data = b"Handy;Vorname;Notiz\n0170 1234567;Anna;=1+1\n12;Bad;=cmd\n"
    made = upload(admin, "kunden.csv", data, mapping=json.dumps({"Handy": "phone", "Vorname": "name"}), country="DE")
    assert made.status_code == 202, made.json
    assert made.json["state"] == "queued" and made.json["file_name"] == "kunden.csv"
    finish(app)
    job = admin.call("GET", f"/contact-imports/{made.json['id']}").json
    assert (job["state"], job["created"], job["rejected"], job["total"]) == ("done", 1, 1, 2)
    report = admin.call("GET", f"/contact-imports/{job['id']}/errors")
    assert report.status_code == 200 and report.mimetype == "text/csv"
    lines = report.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0] == "Handy,Vorname,Notiz,line,error"
    assert lines[1].startswith("12,Bad,'=cmd,3,")
    undoing = admin.call("POST", f"/contact-imports/{job['id']}/undo")
    assert undoing.status_code == 202, undoing.json
    assert (undoing.json["state"], undoing.json["undo_total"], undoing.json["undo_processed"]) == ("undoing", 1, 0)
    assert admin.call("POST", f"/contact-imports/{job['id']}/undo").status_code == 409, "asked for already"
    finish(app)
    undone = admin.call("GET", f"/contact-imports/{job['id']}").json
    assert (undone["state"], undone["undo_processed"], undone["deleted"], undone["restored"], undone["kept"]) == (
        "undone",
        1,
        1,
        0,
        0,
    )
    assert admin.call("POST", f"/contact-imports/{job['id']}/undo").status_code == 409
    assert audit(app, "contacts.import.undo")[0].channel == "api"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mode": "sometimes"}, "mode"),
        ({"mapping": "{not json"}, "mapping"),
        ({"mapping": json.dumps({"Phone": "phone", "Name": "phone"})}, "mapping"),
        ({"country": "XX"}, "country"),
        ({"mapping": json.dumps({"Phone": "phone", "Name": "consent"})}, "consent_confirmed"),
    ],
)
def test_bad_input_is_refused_naming_the_field(app, admin, fields, field):
    refused = upload(admin, "a.csv", b"Phone,Name\n+49 170 1234567,Ann\n", **fields)
    assert refused.status_code == 400, refused.json
    assert refused.json["field"] == field


def test_a_file_that_is_not_what_its_name_says_is_refused(app, admin):
    refused = upload(admin, "a.xlsx", b"Phone,Name\n+49 170 1234567,Ann\n")
    assert refused.status_code == 400 and refused.json["field"] == "file"
    assert "not an Excel workbook" in refused.json["error"]


def test_an_upload_over_50_mb_is_refused_with_the_limit(app, admin):
    refused = upload(admin, "big.csv", b"Phone\n" + b"+49 170 1234567\n" * (52 * 1024 * 1024 // 16))
    assert refused.status_code == 413
    assert "50 MB" in refused.json["error"] and refused.json["field"] == "file"


def test_agents_cannot_import_and_unknown_imports_are_404(app, admin):
    agent = Api.of(app, "agent")
    assert upload(agent, "a.csv", b"Phone\n+49 170 1234567\n").status_code == 403
    assert admin.call("GET", "/contact-imports/999").status_code == 404
    assert admin.call("GET", "/contact-imports/999/errors").status_code == 404


def test_an_upload_larger_than_the_apps_other_forms_but_within_50_mb_is_taken(app, admin):
    rows = b"".join(b"+49 151 %08d,Person\n" % n for n in range(10_000_000, 10_000_000 + 20 * 1024 * 1024 // 24))
    assert len(rows) > app.config["MAX_CONTENT_LENGTH"]
    made = upload(admin, "big.csv", b"Phone,Name\n" + rows)
    assert made.status_code == 202, made.json
