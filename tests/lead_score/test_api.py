"""The lead score in the API: admins keep the rules, everyone who sees contacts reads them and the scores;
bad input is refused naming the field and changes nothing; each change is audited and announced."""

from __future__ import annotations

import pytest

from sigdesk.lifecycle import commands as lifecycle
from tests import factories
from tests.commanding import audit, events
from tests.lead_score.helpers import SYSTEM, feed
from tests.lifecycle.helpers import Api

pytestmark = pytest.mark.database


def test_an_admin_creates_lists_changes_and_deletes_rules_audited_and_announced(app):
    admin = Api.of(app, "admin")
    with app.extensions["sigdesk"].database.session() as session:
        lifecycle.create_tag(session, SYSTEM, "VIP")
        session.commit()
    made = admin.call("POST", "/lead-score-rules", {"kind": "has_tag", "argument": "vip", "points": 20})
    assert made.status_code == 201, made.json
    rule = made.json
    assert (rule["kind"], rule["argument"], rule["points"], rule["label"], rule["position"]) == (
        "has_tag",
        "VIP",
        20,
        "Tag VIP",
        1,
    )
    second = admin.call("POST", "/lead-score-rules", {"kind": "opted_in", "points": 10, "label": "Opted in"}).json
    moved = admin.call("PATCH", f"/lead-score-rules/{second['id']}", {"position": 1, "points": -5})
    assert moved.status_code == 200 and (moved.json["position"], moved.json["points"]) == (1, -5)
    listed = admin.call("GET", "/lead-score-rules").json["items"]
    assert [(item["label"], item["position"]) for item in listed] == [("Opted in", 1), ("Tag VIP", 2)]
    assert admin.call("DELETE", f"/lead-score-rules/{rule['id']}").json == {"id": rule["id"]}
    assert admin.call("DELETE", f"/lead-score-rules/{rule['id']}").status_code == 404
    assert [entry.action for entry in audit(app, "leadscore.rule.create")] == ["leadscore.rule.create"] * 2
    updated = audit(app, "leadscore.rule.update")[0]
    assert updated.channel == "api" and isinstance(updated.detail.pop("token_id"), int)
    assert updated.detail == {"points": {"from": 10, "to": -5}, "position": {"from": 2, "to": 1}}
    assert audit(app, "leadscore.rule.delete")[0].channel == "api"
    assert [event["change"] for event in events(app, "lead_score.rules_changed")] == [
        "created",
        "created",
        "changed",
        "deleted",
    ]


def test_the_has_ordered_kind_is_kept_and_says_it_counts_once_orders_exist(app):
    admin = Api.of(app, "admin")
    made = admin.call("POST", "/lead-score-rules", {"kind": "has_ordered", "points": 30}).json
    assert made["label"] == "Has ordered" and "orders exist" in made["note"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"kind": "opted_in", "points": 101}, 422, "points"),
        ({"kind": "opted_in", "points": -101}, 422, "points"),
        ({"kind": "has_tag", "points": 5, "argument": "No such tag"}, 422, "argument"),
        ({"kind": "has_tag", "points": 5}, 422, "argument"),
        ({"kind": "in_stage", "points": 5, "argument": "Nowhere"}, 422, "argument"),
        ({"kind": "field_set", "points": 5, "argument": "nokey"}, 422, "argument"),
        ({"kind": "field_equals", "points": 5, "argument": "nokey=1"}, 422, "argument"),
        ({"kind": "recent_inbound", "points": 5, "argument": "0"}, 422, "argument"),
        ({"kind": "recent_inbound", "points": 5, "argument": "a week"}, 422, "argument"),
        ({"kind": "wrote_a_poem", "points": 5}, 400, "kind"),
        ({"kind": "opted_in", "points": "5"}, 400, "points"),
        ({"kind": "opted_in", "points": 5, "label": "x" * 65}, 400, "label"),
        ({"kind": "opted_in", "points": 5, "label": "two\nlines"}, 422, "label"),
        ({"kind": "opted_in", "points": 5, "position": 2}, 422, "position"),
    ],
)
def test_bad_rules_are_refused_naming_the_field_and_store_nothing(app, body, status, field):
    admin = Api.of(app, "admin")
    refused = admin.call("POST", "/lead-score-rules", body)
    assert refused.status_code == status, refused.json
    assert refused.json["field"] == field
    assert admin.call("GET", "/lead-score-rules").json["items"] == []
    assert events(app, "lead_score.rules_changed") == []


def test_a_bad_change_leaves_the_rule_as_it_was(app):
    admin = Api.of(app, "admin")
    rule = admin.call("POST", "/lead-score-rules", {"kind": "recent_inbound", "argument": "7", "points": 5}).json
    refused = admin.call("PATCH", f"/lead-score-rules/{rule['id']}", {"points": 500, "label": "Changed"})
    assert refused.status_code == 422 and refused.json["field"] == "points"
    refused = admin.call("PATCH", f"/lead-score-rules/{rule['id']}", {"position": 2})
    assert refused.status_code == 422 and refused.json["field"] == "position"
    assert admin.call("GET", "/lead-score-rules").json["items"][0]["label"] == "Wrote within 7 days"


def test_agents_read_rules_and_scores_but_may_not_change_rules(app):
    admin, agent = Api.of(app, "admin"), Api.of(app, "agent")
    rule = admin.call("POST", "/lead-score-rules", {"kind": "opted_in", "points": 10}).json
    assert agent.call("GET", "/lead-score-rules").status_code == 200
    assert agent.call("POST", "/lead-score-rules", {"kind": "opted_in", "points": 10}).status_code == 403
    assert agent.call("PATCH", f"/lead-score-rules/{rule['id']}", {"points": 1}).status_code == 403
    assert agent.call("DELETE", f"/lead-score-rules/{rule['id']}").status_code == 403
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = factories.contact(session).id
        session.commit()
    assert agent.call("GET", f"/contacts/{contact_id}/lead-score").json == {
        "contact_id": contact_id,
        "score": None,
        "why": "",
        "reasons": [],
    }


def test_a_contacts_score_and_reasons_are_in_its_json_and_its_own_operation(app):
    feed(app)
    admin = Api.of(app, "admin")
    rule = admin.call("POST", "/lead-score-rules", {"kind": "opted_in", "points": 10, "label": "Opted in"}).json
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = factories.contact(session, marketing_consent="opted_in").id
        session.commit()
    feed(app)
    reasons = [{"label": "Opted in", "points": 10, "source": "rule", "rule_id": rule["id"]}]
    assert admin.call("GET", f"/contacts/{contact_id}/lead-score").json == {
        "contact_id": contact_id,
        "score": 10,
        "why": "Opted in +10",
        "reasons": reasons,
    }
    record = admin.call("GET", f"/contacts/{contact_id}").json
    assert record["lead_score"] == 10 and record["lead_score_reasons"] == reasons
    assert admin.call("GET", "/contacts/999999/lead-score").status_code == 404
