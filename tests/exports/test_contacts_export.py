"""Contacts exported with every field of the contact record: tags, stage, marketing consent, lead score and the
custom fields (CSV: one `field:<key>` column each; JSON: the `fields` object), for every contact, a saved segment
or a selection, from `sigdesk export` and from Admin → Exports alike."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.cli import main
from sigdesk.custom_fields.commands import define_field
from sigdesk.custom_fields.services import set_values
from sigdesk.exports.services import COLUMNS, ContactScope, ExportError, export
from sigdesk.lifecycle import commands as lifecycle
from sigdesk.segments.commands import create_segment
from tests import factories
from tests.commanding import audit, cli, events
from tests.conftest import csrf_from

SYSTEM = Actor.system("cli")
HOSTILE = '=HYPERLINK("http://evil.example")'


@pytest.fixture
def crm(app) -> dict[str, int]:
    """Three contacts: Ana (tags vip and =cmd, stage Trial 2026, opted in, every kind of custom field), Bea (tag vip,
    a hostile company note), Cid (nothing). Two custom fields definitions without values on some contacts; a saved
    segment "VIPs" (tag vip). Returns the contacts' ids by first name."""
    with app.extensions["sigdesk"].database.session() as session:
        define_field(session, SYSTEM, "Budget", "number", key="budget")
        define_field(session, SYSTEM, "Plan", "choice", key="plan", options=["Basic", "Pro"])
        define_field(session, SYSTEM, "Interests", "choices", key="interests", options=["Shoes", "Hats"])
        define_field(session, SYSTEM, "Newsletter", "boolean", key="newsletter")
        define_field(session, SYSTEM, "Renewal", "date", key="renewal")
        define_field(session, SYSTEM, "Remark", "text", key="remark")
        ana = factories.contact(session, "447700900001", name="Ana", marketing_consent="opted_in")
        bea = factories.contact(session, "447700900002", name="Bea")
        cid = factories.contact(session, "447700900003", name="Cid")
        vip = lifecycle.create_tag(session, SYSTEM, "vip")
        hostile_tag = lifecycle.create_tag(session, SYSTEM, "=cmd")
        customer = lifecycle.create_stage(session, SYSTEM, "Trial 2026")
        for who, tag in ((ana, vip), (ana, hostile_tag), (bea, vip)):
            lifecycle.tag_contact(session, SYSTEM, who.id, tag.id)
        lifecycle.set_stage(session, SYSTEM, ana.id, customer.id)
        set_values(
            session,
            ana.id,
            {
                "budget": 1500,
                "plan": "Pro",
                "interests": ["Shoes", "Hats"],
                "newsletter": True,
                "renewal": "2027-01-31",
                "remark": "-2+3",
            },
        )
        set_values(session, bea.id, {"remark": HOSTILE})
        create_segment(
            session, SYSTEM, "VIPs", {"match": "all", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]}
        )
        return {"Ana": ana.id, "Bea": bea.id, "Cid": cid.id}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def read_json(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.database
def test_csv_has_every_contact_column_then_one_column_per_custom_field_in_the_admins_order(app, crm, tmp_path):
    with app.extensions["sigdesk"].database.session() as session:
        export(session, "contacts", "csv", tmp_path / "c.csv")
    with open(tmp_path / "c.csv", newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    fields = ["field:budget", "field:plan", "field:interests", "field:newsletter", "field:renewal", "field:remark"]
    assert header == [*COLUMNS["contacts"], *fields]
    assert {"tags", "stage", "marketing_consent", "opted_out_marketing"} <= set(header) and "fields" not in header
    rows = {row["profile_name"]: row for row in read_csv(tmp_path / "c.csv")}
    ana, bea, cid = rows["Ana"], rows["Bea"], rows["Cid"]
    assert ana["tags"] == "'=cmd, vip" and bea["tags"] == "vip" and cid["tags"] == ""
    assert (ana["stage"], bea["stage"]) == ("Trial 2026", "")
    assert (ana["marketing_consent"], cid["marketing_consent"]) == ("opted_in", "unknown")
    assert [ana[column] for column in fields] == ["1500", "Pro", "Shoes, Hats", "True", "2027-01-31", "'-2+3"]
    assert [bea[column] for column in fields] == ["", "", "", "", "", "'" + HOSTILE]
    assert all(cid[column] == "" for column in fields)


@pytest.mark.database
def test_json_lines_keep_fields_as_an_object_and_tags_as_a_list(app, crm, tmp_path):
    with app.extensions["sigdesk"].database.session() as session:
        export(session, "contacts", "json", tmp_path / "c.jsonl")
    records = {record["profile_name"]: record for record in read_json(tmp_path / "c.jsonl")}
    ana = records["Ana"]
    assert ana["tags"] == ["=cmd", "vip"] and ana["stage"] == "Trial 2026" and ana["marketing_consent"] == "opted_in"
    assert ana["fields"] == {
        "budget": 1500,
        "plan": "Pro",
        "interests": ["Shoes", "Hats"],
        "newsletter": True,
        "renewal": "2027-01-31",
        "remark": "-2+3",  # JSON is data, not a spreadsheet: the text as it is
    }
    assert records["Bea"]["fields"] == {"remark": HOSTILE} and records["Cid"]["fields"] == {}
    assert records["Cid"]["tags"] == [] and records["Cid"]["stage"] is None


@pytest.mark.database
@pytest.mark.parametrize("segment", ["VIPs", "vips", "id"])
def test_a_segment_by_name_or_id_exports_only_its_contacts(app, crm, tmp_path, segment):
    with app.extensions["sigdesk"].database.session() as session:
        if segment == "id":
            from sigdesk.models import Segment

            segment = str(session.scalars(select(Segment.id)).one())
        written = export(session, "contacts", "json", tmp_path / "s.jsonl", contacts=ContactScope(segment=segment))
    assert [record["id"] for record in read_json(tmp_path / "s.jsonl")] == [crm["Ana"], crm["Bea"]]
    assert written == {"contacts": 2}


@pytest.mark.database
def test_a_selection_exports_those_contacts_once_each_in_id_order_and_skips_ids_since_deleted(app, crm, tmp_path):
    scope = ContactScope(ids=(crm["Cid"], crm["Ana"], crm["Cid"], 99999))
    seen = []
    with app.extensions["sigdesk"].database.session() as session:
        written = export(
            session, "contacts", "csv", tmp_path / "s.csv", contacts=scope, progress=lambda *done: seen.append(done)
        )
    assert [int(row["id"]) for row in read_csv(tmp_path / "s.csv")] == [crm["Ana"], crm["Cid"]]
    assert written == {"contacts": 2} and seen[-1] == (2, 2)


@pytest.mark.database
def test_a_filter_and_search_from_the_contacts_page_choose_the_contacts(app, crm, tmp_path):
    definition = {"match": "all", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]}
    with app.extensions["sigdesk"].database.session() as session:
        export(session, "contacts", "json", tmp_path / "f.jsonl", contacts=ContactScope(definition=definition, q="Bea"))
    assert [record["id"] for record in read_json(tmp_path / "f.jsonl")] == [crm["Bea"]]


@pytest.mark.database
def test_a_selection_or_segment_streams_in_batches(app, tmp_path, monkeypatch):
    monkeypatch.setattr("sigdesk.exports.services.BATCH", 3)
    monkeypatch.setattr("sigdesk.segments.services.BATCH", 2)
    with app.extensions["sigdesk"].database.session() as session:
        ids = [factories.contact(session, f"4411{n:04d}").id for n in range(11)]
        everyone = {"match": "all", "conditions": [{"field": "phone", "op": "starts_with", "value": "4411"}]}
        create_segment(session, SYSTEM, "Eleven", everyone)
        export(session, "contacts", "json", tmp_path / "s.jsonl", contacts=ContactScope(segment="Eleven"))
        export(session, "contacts", "json", tmp_path / "i.jsonl", contacts=ContactScope(ids=tuple(ids[::2])))
    assert [record["id"] for record in read_json(tmp_path / "s.jsonl")] == ids
    assert [record["id"] for record in read_json(tmp_path / "i.jsonl")] == ids[::2]


@pytest.mark.database
def test_an_unknown_segment_or_a_broken_filter_is_refused_by_field_before_any_file_is_written(app, crm, tmp_path):
    out = tmp_path / "c.csv"
    with app.extensions["sigdesk"].database.session() as session:
        with pytest.raises(ExportError, match="There is no segment 'Nobody'; saved segments: VIPs") as missing:
            export(session, "contacts", "csv", out, contacts=ContactScope(segment="Nobody"))
        assert missing.value.field == "segment" and missing.value.status == 404
        deleted = {"conditions": [{"field": "tag", "op": "has", "value": "gone"}]}
        with pytest.raises(ExportError, match="tag 'gone' no longer exists") as broken:
            export(session, "contacts", "csv", out, contacts=ContactScope(definition=deleted))
        assert broken.value.field == "filter"
        with pytest.raises(ExportError, match="not several") as both:
            export(session, "contacts", "csv", out, contacts=ContactScope(ids=(1,), segment="VIPs"))
        assert both.value.field == "segment"
        with pytest.raises(ExportError, match="Only a contacts export") as other:
            export(session, "messages", "csv", out, contacts=ContactScope(ids=(1,)))
        assert other.value.field == "what"
    assert list(tmp_path.glob("c.csv*")) == []


# --- the command line -------------------------------------------------------------------------------------------


def sigdesk(app, *args: str):
    config = app.extensions["sigdesk"].config
    return CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args])


@pytest.mark.database
def test_cli_exports_a_segment_or_a_selection_and_audits_which(app, crm, tmp_path):
    cli(app, "export", "--what", "contacts", "--segment", "VIPs", "--out", str(tmp_path / "vips.csv"))
    result = cli(app, "export", "--what", "contacts", "--format", "json", "--ids", f"{crm['Cid']}, {crm['Ana']}",
                 "--out", str(tmp_path / "picked.jsonl"))  # fmt: skip
    assert "Exported to" in result.output and "2 contacts" in result.output
    assert [row["profile_name"] for row in read_csv(tmp_path / "vips.csv")] == ["Ana", "Bea"]
    assert [record["profile_name"] for record in read_json(tmp_path / "picked.jsonl")] == ["Ana", "Cid"]
    segment_id = audit(app, "export.run")[0].detail["segment"]
    assert [entry.detail for entry in audit(app, "export.run")] == [
        {"format": "csv", "rows": 2, "segment": segment_id},
        {"format": "json", "rows": 2, "selection": 2},
    ]
    assert events(app, "export.finished")[1]["extra"] == {"rows_by_kind": {"contacts": 2}, "selection": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segment", "Nobody"], "There is no segment 'Nobody'; saved segments: VIPs"),
        (["--ids", "1,two,3"], "--ids holds 'two', which is not a contact id"),
        (["--ids", " , "], "--ids holds no contact ids"),
        (["--ids", "1", "--segment", "VIPs"], "Give --segment or --ids, not both"),
    ],
)
def test_cli_refuses_a_bad_segment_or_selection_with_a_clear_message_and_a_non_zero_exit(
    app, crm, tmp_path, args, message
):
    result = sigdesk(app, "export", "--what", "contacts", *args, "--out", str(tmp_path / "c.csv"))
    assert result.exit_code == 1 and message in result.output, result.output
    assert list(tmp_path.glob("c.csv*")) == [] and audit(app, "export.run") == []


def test_cli_segment_needs_the_contacts_export(app, crm, tmp_path):
    result = sigdesk(app, "export", "--what", "messages", "--segment", "VIPs", "--out", str(tmp_path / "m.csv"))
    assert result.exit_code == 1 and "use them with --what contacts" in result.output


# --- Admin → Exports ------------------------------------------------------------------------------------------


@pytest.mark.database
def test_the_contacts_page_link_with_a_selection_offers_it_and_downloads_just_those(app, auth, owner, crm):
    ids = f"{crm['Bea']},{crm['Ana']}"
    page = auth.client.get("/admin/exports/contacts/export", query_string={"ids": ids})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "The 2 contacts selected on the Contacts page" in html
    assert f'name="ids" value="{ids}"' in html and 'value="selection" selected' in html
    response = auth.client.post(
        "/admin/exports/contacts/export",
        data={"csrf_token": csrf_from(html), "scope": "selection", "ids": ids, "format": "csv", "bom": "1"},
    )
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    assert "sigdesk-contacts-selection-" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [row["profile_name"] for row in rows] == ["Ana", "Bea"] and rows[0]["field:plan"] == "Pro"
    assert audit(app, "export.run")[-1].detail == {"format": "csv", "rows": 2, "selection": 2}


def test_the_contacts_page_link_with_a_filter_carries_it_and_downloads_its_contacts(app, auth, owner, crm):
    definition = json.dumps({"conditions": [{"field": "tag", "op": "has", "value": "vip"}]})
    html = auth.client.get("/admin/exports/contacts/export", query_string={"filter": definition, "q": "Ana"}).get_data(
        as_text=True
    )
    assert "matching the Contacts page's filter and search “Ana”" in html and 'value="filter" selected' in html
    response = auth.client.post(
        "/admin/exports/contacts/export",
        data={"csrf_token": csrf_from(html), "scope": "filter", "filter": definition, "q": "Ana", "format": "json"},
    )
    assert response.status_code == 200
    assert [json.loads(line)["id"] for line in response.data.decode().splitlines()] == [crm["Ana"]]


def test_the_exports_page_offers_the_segments_and_exports_one(app, auth, owner, crm):
    html = auth.client.get("/admin/exports/").get_data(as_text=True)
    assert 'id="contacts-export-form"' in html and ">Segment: VIPs</option>" in html
    with app.extensions["sigdesk"].database.session() as session:
        from sigdesk.models import Segment

        segment_id = session.scalars(select(Segment.id)).one()
    response = auth.post(
        "/admin/exports/contacts/export",
        {"scope": f"segment:{segment_id}", "format": "json"},
        form_page="/admin/exports/",
    )
    assert [json.loads(line)["profile_name"] for line in response.data.decode().splitlines()] == ["Ana", "Bea"]


@pytest.mark.parametrize(
    ("form", "status", "field", "message"),
    [
        ({"scope": "segment", "segment": "424242"}, 404, "segment", "There is no segment"),
        ({"scope": "segment:424242"}, 404, "segment", "There is no segment"),
        ({"scope": "segment", "segment": ""}, 400, "segment", "Choose the segment"),
        ({"scope": "selection", "ids": "1,x"}, 400, "ids", "which is not a contact id"),
        ({"scope": "filter", "filter": "{not json"}, 400, "filter", "not a filter SigDesk can read"),
        ({"scope": "filter", "filter": '{"conditions": [{"field": "nope", "op": "is"}]}'}, 422, "filter", "filter"),
        ({"scope": "everything"}, 400, "scope", "Unknown choice of contacts"),
        ({"scope": "all", "format": "xml"}, 400, "format", "Unknown format"),
    ],
)
def test_a_refused_contacts_export_comes_back_with_the_message_by_its_field(
    app, auth, owner, crm, form, status, field, message
):
    response = auth.post("/admin/exports/contacts/export", {"format": "csv", **form})
    html = response.get_data(as_text=True)
    assert response.status_code == status and message in html
    assert f'id="contacts-{field}-error"' in html
    assert audit(app, "export.run") == []
    data_dir = app.extensions["sigdesk"].config.data_dir
    assert list((data_dir / "exports").iterdir()) == []


def test_a_refused_contacts_export_asked_for_json_is_a_json_error_naming_the_field(app, auth, owner, crm):
    response = auth.post(
        "/admin/exports/contacts/export",
        {"scope": "segment", "segment": "Nobody", "format": "csv"},
        form_page="/admin/exports/contacts/export",
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 404 and response.get_json()["field"] == "segment"


def test_only_those_who_may_export_contacts_see_or_use_the_contacts_export(app, auth, owner, crm):
    admin = auth.create_user("admin")
    agent = auth.create_user("agent")
    auth.logout()
    auth.login(agent)
    assert auth.client.get("/admin/exports/contacts/export").status_code == 403
    refused = auth.post("/admin/exports/contacts/export", {"scope": "all", "format": "csv"}, form_page="/account/")
    assert refused.status_code == 403 and "attachment" not in refused.headers.get("Content-Disposition", "")
    assert 'id="contacts-export-form"' not in auth.client.get("/account/").get_data(as_text=True)
    auth.logout()
    auth.login(admin)
    assert auth.client.get("/admin/exports/contacts/export").status_code == 200
    done = auth.post("/admin/exports/contacts/export", {"scope": "all", "format": "csv"})
    assert done.status_code == 200 and len(read_rows(done)) == 3
    assert audit(app, "export.run")[-1].actor == admin.email


def read_rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))


def test_every_contact_is_the_default_and_the_file_name_says_contacts(app, auth, owner, crm):
    response = auth.post("/admin/exports/contacts/export", {"format": "csv"})
    assert len(read_rows(response)) == 3
    assert "sigdesk-contacts-2" in response.headers["Content-Disposition"]


def test_a_role_without_contacts_export_gets_no_contacts_from_any_export_form(app, auth, owner, crm, monkeypatch):
    from sigdesk import roles

    admin = auth.create_user("admin")
    monkeypatch.setitem(roles.PERMISSIONS, "admin", roles.PERMISSIONS["admin"] - {"contacts.export"})
    auth.logout()
    auth.login(admin)
    html = auth.client.get("/admin/exports/").get_data(as_text=True)
    assert 'id="contacts-export-form"' not in html
    for what in ("contacts", "all"):
        refused = auth.post("/admin/exports/download", {"what": what, "format": "csv"}, form_page="/admin/exports/")
        assert refused.status_code == 403 and "does not allow exporting contacts" in refused.get_data(as_text=True)
    audit_export = auth.post("/admin/exports/download", {"what": "audit", "format": "csv"}, form_page="/admin/exports/")
    assert audit_export.status_code == 200
    assert auth.client.get("/admin/exports/contacts/export").status_code == 403
    assert audit(app, "export.run")[-1].target == "audit"


def test_a_link_naming_a_segment_arrives_with_it_chosen(app, auth, owner, crm):
    with app.extensions["sigdesk"].database.session() as session:
        from sigdesk.models import Segment

        segment_id = session.scalars(select(Segment.id)).one()
    html = auth.client.get("/admin/exports/contacts/export", query_string={"segment": segment_id}).get_data(
        as_text=True
    )
    assert f'value="segment:{segment_id}" selected' in html and 'value="all" selected' not in html
