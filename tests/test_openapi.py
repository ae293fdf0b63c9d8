"""The pages' own JSON calls are declared once, answers included, and documented apart from the public API."""

from __future__ import annotations

import ast
import logging
import inspect
import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

import sigdesk
from sigdesk.openapi import _answer_mismatch
from sigdesk.backup.schemas import BackupProgress
from sigdesk.relay_client.schemas import InboundStatus

PACKAGE = Path(sigdesk.__file__).parent
NOT_PAGE_CALLS = {
    "health.healthz": "the launcher's and monitors' probe, not a page's call",
    "inbox.calls": "the page calls' document itself",
}


def _json_answering_functions(tree: ast.Module) -> set[str]:
    """Module-level functions that call jsonify (directly or through another function of the same module)
    or return a dict literal, which Flask answers as JSON."""
    calls: dict[str, set[str]] = {}
    dicts = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            inside = list(ast.walk(node))
            calls[node.name] = {
                inner.func.id for inner in inside if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name)
            }
            if any(isinstance(inner, ast.Return) and isinstance(inner.value, ast.Dict) for inner in inside):
                dicts.add(node.name)
    answering = {name for name, called in calls.items() if "jsonify" in called}
    while grown := {name for name, called in calls.items() if called & answering} - answering:
        answering |= grown
    return answering | dicts


def _json_views() -> set[tuple[str, str]]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        if "Blueprint(" not in source:
            continue
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found |= {(module, name) for name in _json_answering_functions(ast.parse(source))}
    return found


def _documented_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


@pytest.fixture
def calls(auth, owner) -> dict:
    return auth.client.get("/inbox/openapi.json").get_json()


def test_every_json_answer_outside_the_api_is_a_page_call_documented_with_its_answer(app, calls):
    json_views = _json_views()
    checked = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.endpoint in NOT_PAGE_CALLS:
            continue
        view = inspect.unwrap(app.view_functions[rule.endpoint])
        if (view.__module__, view.__name__) not in json_views:
            continue
        item = calls["paths"].get(_documented_path(rule.rule), {})
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = item.get(method.lower())
            assert operation, f"{method} {rule.rule} answers JSON but is not declared with ui_call()"
            answers = [
                answer
                for status, answer in operation["responses"].items()
                if status.startswith("2") and "schema" in answer.get("content", {}).get("application/json", {})
            ]
            assert answers, f"{method} {rule.rule} does not declare its JSON answer"
        checked.add(rule.endpoint)
    assert {"inbox.send", "inbox.canned", "inbox.visibility", "relay.status_json", "backups.status"} <= checked


def test_the_public_api_document_lists_none_of_the_page_calls(auth, owner, calls):
    api = auth.client.get("/api/v1/openapi.json").get_json()
    assert not set(api["paths"]) & set(calls["paths"])
    assert not {"Queued", "CannedList", "InboundStatus", "BackupProgress"} & set(api["components"]["schemas"])


def test_a_settings_form_post_documents_its_redirect_beside_its_json_answer(calls):
    responses = calls["paths"]["/inbox/canned"]["post"]["responses"]
    assert {"201", "302"} <= set(responses)
    assert responses["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/CannedSaved")


def test_the_status_calls_answer_what_they_declare(auth, owner, calls):
    inbound = auth.client.get("/admin/inbound/status.json")
    assert inbound.status_code == 200
    assert InboundStatus.model_validate(inbound.get_json()).mode == "direct"
    backup = auth.client.get("/admin/backups/status")
    assert backup.status_code == 200
    assert BackupProgress.model_validate(backup.get_json()).state == "idle"
    assert calls["paths"]["/admin/inbound/status.json"]["get"]["operationId"] == "inboundStatus"
    assert calls["paths"]["/admin/backups/status"]["get"]["operationId"] == "backupStatus"


class _Note(BaseModel):
    body: int


def test_a_mismatching_answer_is_logged_without_its_values(caplog):
    with pytest.raises(ValidationError) as mismatch:
        _Note.model_validate({"body": "Mrs Rosa's cake order, 555-0100"})
    with caplog.at_level(logging.ERROR, logger="sigdesk.openapi"):
        _answer_mismatch(None, None, mismatch.value, None, None)
    assert "body" in caplog.text and "int_parsing" in caplog.text
    assert "Rosa" not in caplog.text and "555" not in caplog.text
