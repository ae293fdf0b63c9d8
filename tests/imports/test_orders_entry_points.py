"""An order history imported through `sigdesk orders import` (a progress bar, the counts on the last line, the
refused rows next to the file, exit codes) and through the Import page (kind, mapping, options, job, undo)."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from sigdesk.models import ImportJob, Order
from tests.conftest import csrf_from
from tests.imports.helpers import finish
from tests.imports.test_cli import sigdesk

pytestmark = pytest.mark.database


def test_the_cli_prints_orders_lines_contacts_and_refusals_on_its_last_line(app, tmp_path):
    source = tmp_path / "history.csv"
    source.write_text(
        "phone,ordered_at,quantity,amount,currency,order_ref\n"
        "+49 170 1234567,2025-03-01,1,4.50,EUR,A\n"
        "+49 170 1234567,2025-03-01,2,5.00,EUR,A\n"
        "+44 7911 123456,2025-03-04 10:00,-1,5.00,EUR,B\n"
        "+44 7911 123456,2025-03-05,1,5.00,EUR,C\n",
        encoding="utf-8",
    )
    result = sigdesk(app, "orders", "import", str(source), "--option", "currency=EUR")
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "2 orders, 3 lines, 2 contacts created, 1 rejected"
    with open(tmp_path / "history-errors.csv", encoding="utf-8-sig", newline="") as report:
        rows = list(csv.reader(report))
    assert rows[1][-2] == "4" and "negative" in rows[1][-1]
    with app.extensions["sigdesk"].database.session() as session:
        job_id, kind = session.execute(select(ImportJob.id, ImportJob.kind)).one()
        assert kind == "orders"
        assert session.scalar(select(func.count()).select_from(Order)) == 2
    undone = sigdesk(app, "contacts", "import-undo", str(job_id))
    assert undone.exit_code == 0, undone.output
    assert undone.output.strip().splitlines()[-1] == "2 orders removed, 2 deleted, 0 put back as they were, 0 kept"


@pytest.mark.parametrize(
    ("data", "args", "message"),
    [
        (None, [], "Cannot read"),
        (b"phone,amount\n+491701234567,1\n", [], "ordered_at"),
        (b"phone,ordered_at,amount\n+491701234567,2025-01-01,1\n", ["--option", "currency=EURO"], "not a currency"),
        (b"phone,ordered_at,amount\n+491701234567,2025-01-01,1\n", ["--option", "nothing"], "NAME=VALUE"),
        (b"phone,ordered_at,amount\n+491701234567,2025-01-01,1\n", ["--map", "Nope=sku"], "no column 'Nope'"),
    ],
)
def test_the_cli_refuses_what_cannot_work_with_a_message_and_exit_1(app, tmp_path, data, args, message):
    source = tmp_path / "o.csv"
    if data is not None:
        source.write_bytes(data)
    result = sigdesk(app, "orders", "import", str(source), *args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    with app.extensions["sigdesk"].database.session() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_the_import_page_takes_an_order_history_and_undoes_it(app, client, owner):
    page = client.get("/admin/imports/?kind=orders")
    html = page.get_data(as_text=True)
    assert "<h1>Import orders</h1>" in html
    data = b"Phone,Date,Total,Order\n+49 170 1234567,2025-03-01,9.50,R1\n+49 170 1234567,2999-01-01,1,R2\n"
    mapped = client.post(
        "/admin/imports/upload",
        data={"csrf_token": csrf_from(html), "kind": "orders", "file": (io.BytesIO(data), "o.csv")},
        content_type="multipart/form-data",
    )
    html = mapped.get_data(as_text=True)
    assert mapped.status_code == 200, html
    assert re.search(r'name="map-1"[^>]*>.*?<option value="ordered_at" selected', html, re.S)
    assert 'name="consent_confirmed"' not in html
    form = {
        "csrf_token": csrf_from(html),
        "stored": re.search(r'name="stored" value="([^"]+)"', html).group(1),
        "file_name": "o.csv",
        "kind": "orders",
        "map-0": "phone",
        "map-1": "ordered_at",
        "map-2": "amount",
        "map-3": "order_ref",
        "country": "DE",
        "currency": "DOLLARS",
        "status": "delivered",
    }
    refused = client.post("/admin/imports/start", data=form)
    assert refused.status_code == 400 and "not a currency" in refused.get_data(as_text=True)
    started = client.post("/admin/imports/start", data={**form, "currency": "EUR"})
    assert started.status_code == 302
    job_id = int(started.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    finish(app)
    status = client.get(f"/admin/imports/{job_id}/status").json
    assert (status["kind"], status["created"], status["lines"], status["contacts_created"], status["rejected"]) == (
        "orders",
        1,
        1,
        1,
        1,
    )
    job_page = client.get(f"/admin/imports/{job_id}").get_data(as_text=True)
    assert "Contacts created" in job_page and "in the future" in client.get(f"/admin/imports/{job_id}/errors").get_data(
        as_text=True
    )
    undo = client.post(f"/admin/imports/{job_id}/undo", data={"csrf_token": csrf_from(job_page)})
    assert undo.status_code == 302
    finish(app)
    assert "1 orders and 1 contacts it created deleted" in client.get(f"/admin/imports/{job_id}").get_data(as_text=True)
    with app.extensions["sigdesk"].database.session() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_an_unknown_kind_is_refused_on_the_page(app, client, owner):
    html = client.get("/admin/imports/").get_data(as_text=True)
    answer = client.post(
        "/admin/imports/upload",
        data={"csrf_token": csrf_from(html), "kind": "invoices", "file": (io.BytesIO(b"a\n1\n"), "x.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400 and "not something to import" in answer.get_data(as_text=True)


def test_the_page_and_the_api_check_the_orders_import_permission_per_kind(app, client, owner, monkeypatch):
    from sigdesk import roles
    from sigdesk.models import User
    from tests import factories
    from tests.imports.helpers import run_kind

    data = b"phone,ordered_at,amount,order_ref\n+491701234567,2025-03-01,9.50,P1\n"
    job = run_kind(app, "orders", "o.csv", data, options={"currency": "EUR"})
    with app.extensions["sigdesk"].database.session() as session:
        token = factories.api_token(session, session.scalar(select(User).where(User.email == owner.email)))
        session.commit()
    assert client.get(f"/admin/imports/{job.id}").status_code == 200
    monkeypatch.setitem(roles.PERMISSIONS, "owner", roles.PERMISSIONS["owner"] - {"orders.import"})
    index = client.get("/admin/imports/?kind=orders").get_data(as_text=True)
    assert "<h1>Import orders</h1>" not in index and 'value="orders"' not in index
    assert client.get(f"/admin/imports/{job.id}").status_code == 403
    assert client.get(f"/admin/imports/{job.id}/errors").status_code == 403
    answer = client.post(
        "/admin/imports/upload",
        data={"csrf_token": csrf_from(index), "kind": "orders", "file": (io.BytesIO(data), "o.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 403 and "does not allow importing orders" in answer.get_data(as_text=True)
    api = client.get(f"/api/v1/contact-imports/{job.id}", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 403, api.get_data(as_text=True)
    undo = client.post(f"/admin/imports/{job.id}/undo", data={"csrf_token": csrf_from(index)})
    assert undo.status_code == 302
    with app.extensions["sigdesk"].database.session() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1
