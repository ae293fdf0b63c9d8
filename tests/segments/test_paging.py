"""Paging the contacts list in any sort visits every contact once: no duplicates, no gaps, NULLs where both
databases put them (first ascending, last descending), and a cursor only works for the sort it came from."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigdesk.db import utcnow
from sigdesk.errors import UserError
from sigdesk.segments.services import find_contacts
from tests import factories
from tests.segments.helpers import field, value

pytestmark = pytest.mark.database

SORTS = ["name", "created_at", "updated_at", "last_contact_at", "company", "city", "country", "stage", "field:budget"]


@pytest.fixture
def crowd(app):
    """Twenty-three contacts with many ties and gaps in every sortable column."""
    from sigdesk.actor import Actor
    from sigdesk.lifecycle import commands as lifecycle
    from sigdesk.models import ContactStage, Stage
    from sqlalchemy import delete

    now = utcnow().replace(microsecond=0)
    with app.extensions["sigdesk"].database.session() as session:
        session.execute(delete(ContactStage))
        session.execute(delete(Stage))
        stages = [lifecycle.create_stage(session, Actor.system("cli"), name) for name in ("One", "Two")]
        budget = field(session, "budget", "number")
        ids = []
        for number in range(23):
            contact = factories.contact(
                session,
                display_name=f"Person {number % 5}" if number % 4 else None,
                company=["Acme", "Beta", None][number % 3],
                city=None if number % 2 else "Rome",
                country=["DE", "FR"][number % 2],
                created_at=now - timedelta(hours=number % 6),
                updated_at=None if number % 7 == 0 else now - timedelta(hours=number % 3),
                last_inbound_at=None if number % 3 else now - timedelta(days=number % 4),
                last_outbound_at=None if number % 5 else now - timedelta(days=number % 2),
            )
            if number % 3 == 0:
                lifecycle.set_stage(session, Actor.system("cli"), contact.id, stages[number % 2].id)
            if number % 2 == 0:
                value(session, contact.id, budget, number_value=float(number % 4))
            ids.append(contact.id)
        session.commit()
        return ids


def _walk(session, sort: str, size: int, definition=None) -> list:
    seen, cursor = [], None
    for _ in range(100):
        found = find_contacts(session, definition, "", sort, cursor, size)
        seen.extend(found.items)
        cursor = found.next_cursor
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("sort", SORTS + [f"-{key}" for key in SORTS])
def test_every_sort_pages_through_every_contact_once(app, crowd, sort):
    with app.extensions["sigdesk"].database.session() as session:
        whole = [item.id for item in find_contacts(session, None, "", sort, None, 200).items]
        for size in (1, 4, 7):
            paged = [item.id for item in _walk(session, sort, size)]
            assert paged == whole, (sort, size)
        assert sorted(whole) == sorted(crowd)


def test_sorts_put_nulls_first_ascending_and_last_descending(app, crowd):
    with app.extensions["sigdesk"].database.session() as session:
        ascending = [item.city for item in find_contacts(session, None, "", "city", None, 200).items]
        descending = [item.city for item in find_contacts(session, None, "", "-city", None, 200).items]
    assert ascending[0] is None and ascending[-1] == "Rome"
    assert descending[0] == "Rome" and descending[-1] is None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sort=st.sampled_from(SORTS), descending=st.booleans(), size=st.integers(1, 9), budget=st.integers(0, 4))
def test_any_sort_and_page_size_with_a_filter_has_no_duplicates_or_gaps(app, crowd, sort, descending, size, budget):
    key = f"-{sort}" if descending else sort
    definition = {"match": "any", "conditions": [{"field": "field:budget", "op": "lt", "value": budget}]}
    with app.extensions["sigdesk"].database.session() as session:
        whole = [item.id for item in find_contacts(session, definition, "", key, None, 200).items]
        assert [item.id for item in _walk(session, key, size, definition)] == whole


def test_a_cursor_is_refused_by_another_sort_and_when_made_up(app, crowd):
    with app.extensions["sigdesk"].database.session() as session:
        cursor = find_contacts(session, None, "", "city", None, 2).next_cursor
        for sort, given_cursor in [("-city", cursor), ("city", "bm9wZQ"), ("city", "x" * 900)]:
            with pytest.raises(UserError) as refused:
                find_contacts(session, None, "", sort, given_cursor, 2)
            assert refused.value.field == "cursor"
        for sort in ("shoe_size", "field:nothing", "--name"):
            with pytest.raises(UserError) as refused:
                find_contacts(session, None, "", sort, None, 2)
            assert refused.value.field == "sort"
