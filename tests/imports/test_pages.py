"""The Import page: upload, map with a preview, start, follow the job (left and revisited), download the refused
rows, undo; refusals come back on the page with a message."""

from __future__ import annotations

import io
import re

import pytest

from tests.conftest import csrf_from
from tests.imports.helpers import finish

pytestmark = pytest.mark.database


def post_file(client, path: str, name: str, data: bytes, csrf: str):
    return client.post(
        path, data={"csrf_token": csrf, "file": (io.BytesIO(data), name)}, content_type="multipart/form-data"
    )


def test_upload_map_start_follow_and_undo(app, client, owner):
    page = client.get("/admin/imports/")
    assert page.status_code == 200
    csrf = csrf_from(page.get_data(as_text=True))
    data = "Teléfono,Nombre,Ciudad\n+49 170 1234567,Zoë,Köln\n+44 7911 123456,Bob,London\n123,Bad,\n".encode("cp1252")
    mapped = post_file(client, "/admin/imports/upload", "leute.csv", data, csrf)
    html = mapped.get_data(as_text=True)
    assert mapped.status_code == 200, html
    assert "Zoë" in html and "Windows-1252" in html
    stored = re.search(r'name="stored" value="([^"]+)"', html).group(1)
    assert re.search(r'name="map-0"[^>]*>.*?<option value="phone" selected', html, re.S)
    form = {
        "csrf_token": csrf_from(html),
        "stored": stored,
        "file_name": "leute.csv",
        "map-0": "phone",
        "map-1": "name",
        "map-2": "city",
        "mode": "upsert",
        "country": "DE",
    }
    started = client.post("/admin/imports/start", data=form)
    assert started.status_code == 302
    job_url = started.headers["Location"]
    queued = client.get(job_url).get_data(as_text=True)
    assert 'data-state="queued"' in queued and "imports.js" in queued
    job_id = int(job_url.rstrip("/").rsplit("/", 1)[1])
    assert client.get(f"/admin/imports/{job_id}/status").json["state"] == "queued"
    finish(app)
    status = client.get(f"/admin/imports/{job_id}/status").json
    assert (status["state"], status["created"], status["rejected"]) == ("done", 2, 1)
    done = client.get(job_url).get_data(as_text=True)
    assert "Download the refused rows" in done and "Undo import" in done
    report = client.get(f"/admin/imports/{job_id}/errors").get_data(as_text=True)
    assert "Teléfono,Nombre,Ciudad,line,error" in report and "123,Bad,,4," in report
    assert "leute.csv" in client.get("/admin/imports/").get_data(as_text=True)
    undoing = client.post(f"/admin/imports/{job_id}/undo", data={"csrf_token": csrf_from(done)}, follow_redirects=True)
    html = undoing.get_data(as_text=True)
    assert "Undoing the import: you can leave this page" in html and 'data-state="undoing"' in html
    assert client.get(f"/admin/imports/{job_id}/status").json["state"] == "undoing"
    finish(app)  # the worker, not the request, undoes it
    status = client.get(f"/admin/imports/{job_id}/status").json
    assert (status["state"], status["undo_processed"], status["deleted"]) == ("undone", 2, 2)
    assert "Import undone: 2 contacts deleted" in client.get(job_url).get_data(as_text=True)


def test_a_refused_upload_says_why_on_the_page(app, client, owner):
    csrf = csrf_from(client.get("/admin/imports/").get_data(as_text=True))
    refused = post_file(client, "/admin/imports/upload", "people.xlsx", b"not a workbook", csrf)
    assert refused.status_code == 400
    assert "not an Excel workbook" in refused.get_data(as_text=True)
    empty = post_file(client, "/admin/imports/upload", "people.csv", b"", csrf)
    assert "The file is empty" in empty.get_data(as_text=True)


def test_a_refused_mapping_comes_back_with_the_preview_and_what_was_chosen(app, client, owner):
    csrf = csrf_from(client.get("/admin/imports/").get_data(as_text=True))
    html = post_file(
        client, "/admin/imports/upload", "p.csv", b"Phone,Mobile\n+49 170 1234567,+44 7911 123456\n", csrf
    ).get_data(as_text=True)
    stored = re.search(r'name="stored" value="([^"]+)"', html).group(1)
    form = {
        "csrf_token": csrf_from(html),
        "stored": stored,
        "file_name": "p.csv",
        "map-0": "phone",
        "map-1": "phone",
        "mode": "upsert",
    }
    again = client.post("/admin/imports/start", data=form)
    text = again.get_data(as_text=True)
    assert again.status_code == 400
    assert "Columns &#39;Phone&#39; and &#39;Mobile&#39; are both mapped to phone" in text
    assert "+44 7911 123456" in text


def test_agents_do_not_see_the_page(app, client, auth, owner):
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert client.get("/admin/imports/").status_code == 403
