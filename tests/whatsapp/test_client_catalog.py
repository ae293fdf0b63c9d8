"""Listing a Meta commerce catalog through the Graph client: page by page over Meta's cursors, only the
fields SigDesk keeps, and Meta's errors as GraphError."""

from __future__ import annotations

import pytest

from sigdesk.whatsapp.client import CATALOG_PRODUCT_FIELDS, GraphClient, InvalidMessage
from sigdesk.whatsapp.errors import GraphError
from tests.fakes.graph import PHONE_NUMBER_ID, TOKEN, WABA_ID, FakeGraph

CATALOG = "880011223344"


@pytest.fixture
def client(fake_graph):
    with GraphClient(fake_graph.url, "v21.0", TOKEN, PHONE_NUMBER_ID, WABA_ID) as graph:
        yield graph


def items(count: int) -> list[dict]:
    return [FakeGraph.catalog_item(f"SKU-{n}", f"Item {n}", price=f"€{n}.50") for n in range(count)]


def test_a_catalog_is_listed_page_by_page_following_the_after_cursor(client, fake_graph):
    fake_graph.add_catalog(CATALOG, items(5))
    pages = list(client.catalog_products(CATALOG))
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [item["retailer_id"] for page in pages for item in page] == [f"SKU-{n}" for n in range(5)]
    listed = [r for r in fake_graph.requests if r.path.endswith(f"/{CATALOG}/products")]
    assert listed[0].query["fields"] == CATALOG_PRODUCT_FIELDS and "after" not in listed[0].query
    assert listed[1].query["after"] and listed[2].query["after"] != listed[1].query["after"]


def test_an_empty_catalog_is_one_empty_page(client, fake_graph):
    fake_graph.add_catalog(CATALOG, [])
    assert list(client.catalog_products(CATALOG)) == [[]]


def test_the_catalogs_linked_to_the_account_are_listed(client, fake_graph):
    fake_graph.add_catalog(CATALOG, [])
    assert [item["id"] for item in client.product_catalogs()] == [CATALOG]


def test_metas_error_on_a_later_page_is_a_graph_error_with_its_code(client, fake_graph):
    fake_graph.add_catalog(CATALOG, items(5))
    fake_graph.fail_catalog_page(2, 4)
    listing = client.catalog_products(CATALOG)
    assert len(next(listing)) == 2
    with pytest.raises(GraphError) as failed:
        next(listing)
    assert failed.value.code == 4 and failed.value.retryable


def test_an_unknown_catalog_is_metas_code_100(client):
    with pytest.raises(GraphError) as failed:
        list(client.catalog_products("123456"))
    assert failed.value.code == 100


def test_a_catalog_id_that_is_not_digits_never_reaches_a_request_path(client, fake_graph):
    with pytest.raises(InvalidMessage):
        list(client.catalog_products("../me"))
    assert not fake_graph.requests
