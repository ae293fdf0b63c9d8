"""End to end on the running server: the worker, woken by the commits' events, scores a contact the API
created, rescores it when a tag goes on, and rescores everyone after a rules change."""

from __future__ import annotations

import pytest

from tests.waiting import wait_for

pytestmark = pytest.mark.database


def _score(api, contact_id: int):
    return api.get(f"/contacts/{contact_id}/lead-score").json()


def test_the_worker_keeps_scores_current_after_contacts_tags_and_rules_change(api):
    assert api.post("/tags", json={"name": "Wholesale"}).status_code == 201
    rule = api.post("/lead-score-rules", json={"kind": "has_tag", "argument": "Wholesale", "points": 40}).json()
    made = api.post("/contacts", json={"phone": "+4917099988877", "name": "Whole Sale"})
    assert made.status_code == 201, made.text
    contact_id = made.json()["id"]
    wait_for(lambda: _score(api, contact_id)["score"] == 0, timeout=30)
    assert api.patch(f"/contacts/{contact_id}", json={"tags": ["Wholesale"]}).status_code == 200
    wait_for(lambda: _score(api, contact_id)["score"] == 40, timeout=30)
    assert _score(api, contact_id)["why"] == "Tag Wholesale +40"
    assert api.patch(f"/lead-score-rules/{rule['id']}", json={"points": 55, "label": "Buys in bulk"}).status_code == 200
    wait_for(lambda: _score(api, contact_id)["why"] == "Buys in bulk +55", timeout=30)
    assert api.get(f"/contacts/{contact_id}").json()["lead_score"] == 55
