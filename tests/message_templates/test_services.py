"""Every entry point fills, checks and shows templates through message_templates.services and one parser."""

import pytest

from sigdesk.errors import NotFound, UserError
from sigdesk.message_templates import services as templates
from tests import factories

pytestmark = pytest.mark.database


@pytest.fixture
def session(app):
    with app.extensions["sigdesk"].database.session() as session:
        yield session


def test_a_send_is_built_from_values_per_component(session):
    row = factories.template(
        session,
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            {"type": "BODY", "text": "Hi {{ 1 }}"},
        ],
        name="spaced",
    )
    good = factories.template(
        session,
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, ready at {{2}}"},
        ],
    )
    content = templates.template_content(session, good.id, {"header": ["#7"], "body": ["Rosa", "5 pm"]})
    assert content["name"] == "order_ready" and [c["type"] for c in content["components"]] == ["header", "body"]
    assert templates.sent_text(good, content) == "Order #7\nHi Rosa, ready at 5 pm"
    with pytest.raises(UserError, match="body"):
        templates.template_content(session, row.id, {"body": ["Rosa"]})
    with pytest.raises(NotFound):
        templates.template_content(session, 999999, {})


def test_a_malformed_template_is_described_not_raised_where_it_is_only_shown(session):
    row = factories.template(session, components="{not json")
    assert templates.variables(row) == {} and "not valid JSON" in templates.problem(row)
    assert templates.data(row)["components"] == [] and templates.option(row)["problem"]
    assert templates.sent_text(row, {"components": []}) is None and templates.sent_text(None, {}) is None


def test_the_send_path_check_refuses_components_that_leave_a_variable_empty(session):
    row = factories.template(session, body="Hi {{1}}, order {{2}}")
    with pytest.raises(UserError, match="body needs 2 values"):
        templates.check(
            row, {"name": row.name, "components": [{"type": "body", "parameters": [{"type": "text", "text": "Rosa"}]}]}
        )
    templates.check(row, templates.template_content(session, row.id, {"body": ["Rosa", "#1"]}))
