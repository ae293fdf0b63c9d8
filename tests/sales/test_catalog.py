"""Products synced from the business's Meta catalog over the (fake) Graph API: created and updated by retailer
id through the sales commands, removed items deactivated, a catalog that cannot be read changes nothing, and a
hostile item is refused with its reason while the rest sync. Runs as a worker job (the page's button) and as
`sigdesk products sync-catalog`."""

from __future__ import annotations

from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from sigdesk.actor import Actor
from sigdesk.cli import main
from sigdesk.errors import UserError
from sigdesk.models import Product, User
from sigdesk.sales.catalog import CatalogError, parse_price, sync_catalog
from sigdesk.sales.catalog_jobs import last_sync
from sigdesk.settings import services as settings
from sigdesk.whatsapp.client import GraphClient
from tests import factories
from tests.commanding import audit, events
from tests.fakes.graph import PHONE_NUMBER_ID, TOKEN, WABA_ID, FakeGraph

CATALOG = "880011223344"
item = FakeGraph.catalog_item


@pytest.mark.parametrize(
    ("price", "currency", "expected"),
    [
        ("€12.50", "EUR", (1250, "EUR")),
        ("12.50 EUR", None, (1250, "EUR")),
        ("$1,234.00", "USD", (123400, "USD")),
        ("1.234,50 €", "EUR", (123450, "EUR")),
        ("12,50\u00a0€", "eur", (1250, "EUR")),
        ("¥1,200", "JPY", (1200, "JPY")),
        ("BHD 1.250", None, (1250, "BHD")),
        (1250, "EUR", (1250, "EUR")),
        (None, "EUR", (None, "EUR")),
    ],
)
def test_metas_formatted_prices_are_read_as_people_write_them(price, currency, expected):
    assert parse_price(price, currency) == expected


@pytest.mark.parametrize(
    ("price", "currency", "field", "words"),
    [
        ("€12.50", "USD", "price", "not the item's currency USD"),
        ("12.50 GBP", "EUR", "price", "in GBP"),
        ("12.50", None, "currency", "does not say its currency"),
        ("12.50", "XYZ", "currency", "not a currency"),
        ("€99999999999999", "EUR", "price", "more than SigDesk accepts"),
        (10**15, "EUR", "price", "more than SigDesk accepts"),
        (12.5, "EUR", "price", "without guessing"),
        ("-5 EUR", None, "price", "negative"),
        ("twelve", "EUR", "price", "cannot"),
        ("€1.2.3,456", "EUR", "price", "decimals"),
    ],
)
def test_prices_that_cannot_be_read_without_guessing_are_refused_naming_the_field(price, currency, field, words):
    with pytest.raises(UserError) as refused:
        parse_price(price, currency)
    assert refused.value.field == field
    assert words in str(refused.value) or (words == "cannot" and "not a price" in str(refused.value))


@pytest.fixture
def graph(fake_graph):
    with GraphClient(fake_graph.url, "v21.0", TOKEN, PHONE_NUMBER_ID, WABA_ID) as client:
        yield client


@pytest.fixture
def admin(app):
    with app.extensions["sigdesk"].database.session() as session:
        return factories.user(session, "admin").id


def run(app, graph, admin_id, catalog_id=CATALOG):
    with app.extensions["sigdesk"].database.session() as session:
        actor = Actor(session.get(User, admin_id), "web")
        return sync_catalog(session, actor, graph, catalog_id)


def products(app) -> dict[str, Product]:
    with app.extensions["sigdesk"].database.session() as session:
        rows = session.scalars(select(Product)).all()
        session.expunge_all()
        return {row.sku: row for row in rows}


@pytest.mark.database
def test_a_paged_catalog_creates_products_by_retailer_id(app, graph, fake_graph, admin):
    fake_graph.add_catalog(
        CATALOG,
        [
            item("WATER-20L", "Water 20 L", "€6.50", category="water", item_id="7001"),
            item("BREAD", "Sourdough", "4,50 €", item_id="7002"),
            item("CAKE", "Chocolate cake", "24.50 EUR", availability="out of stock", item_id="7003"),
            item("OLD", "Old thing", "€1.00", availability="discontinued", item_id="7004"),
            item("YEN", "Matcha", "¥1,200", currency="JPY", item_id="7005"),
        ],
    )
    result = run(app, graph, admin)
    assert (result.created, result.updated, result.unchanged, result.deactivated, result.rejected) == (5, 0, 0, 0, [])
    stored = products(app)
    water = stored["WATER-20L"]
    assert (water.name, water.price_minor, water.currency, water.category, water.catalog_product_id) == (
        "Water 20 L",
        650,
        "EUR",
        "water",
        "7001",
    )
    assert stored["BREAD"].price_minor == 450 and stored["YEN"].price_minor == 1200
    assert stored["CAKE"].active and not stored["OLD"].active
    assert len(events(app, "product.changed")) == 5
    assert audit(app, "products.catalog_synced")[0].detail["created"] == 5
    assert len([r for r in fake_graph.requests if r.path.endswith("/products")]) == 3


@pytest.mark.database
def test_a_second_sync_updates_what_changed_keeps_the_owners_fields_and_deactivates_removed_items(
    app, graph, fake_graph, admin
):
    with app.extensions["sigdesk"].database.session() as session:
        factories.product(session, sku="MINE", name="Not from Meta")
        factories.product(
            session, sku="SKU-NEW-77", name="Unknown product SKU-NEW-77", price_minor=None, placeholder=True
        )
    fake_graph.add_catalog(
        CATALOG,
        [
            item("WATER-20L", "Water 20 L", "€6.50", category="water", item_id="7001"),
            item("BREAD", "Sourdough", "€4.50", item_id="7002"),
            item("GONE", "Seasonal", "€3.00", item_id="7003"),
        ],
    )
    run(app, graph, admin)
    with app.extensions["sigdesk"].database.session() as session:
        water = session.scalars(select(Product).where(Product.sku == "WATER-20L")).one()
        water.reorder_days = 14
    fake_graph.catalogs[CATALOG] = [
        item("WATER-20L", "Water 20 L jug", "€6.90", item_id="7001"),
        item("BREAD", "Sourdough", "€4.50", item_id="7002"),
        item("SKU-NEW-77", "Green tea", "€5.00", item_id="7009"),
    ]
    result = run(app, graph, admin)
    assert (result.created, result.updated, result.unchanged, result.deactivated) == (0, 2, 1, 1)
    stored = products(app)
    water = stored["WATER-20L"]
    assert (water.name, water.price_minor, water.category, water.reorder_days) == ("Water 20 L jug", 690, "water", 14)
    assert not stored["GONE"].active and stored["MINE"].active
    tea = stored["SKU-NEW-77"]
    assert (tea.name, tea.price_minor, tea.placeholder, tea.catalog_product_id) == ("Green tea", 500, False, "7009")


@pytest.mark.database
def test_a_graph_error_on_any_page_gives_a_clear_message_and_changes_nothing(app, graph, fake_graph, admin):
    with app.extensions["sigdesk"].database.session() as session:
        factories.product(session, sku="BREAD", name="Bread", price_minor=400, catalog_product_id="7002")
    fake_graph.add_catalog(CATALOG, [item(f"SKU-{n}", f"Item {n}", "€1.00") for n in range(5)])
    fake_graph.fail_catalog_page(3, 190, status=401)
    with pytest.raises(CatalogError) as failed:
        run(app, graph, admin)
    assert "nothing was changed" in str(failed.value) and "access token" in str(failed.value)
    assert failed.value.field == "catalog_id"
    stored = products(app)
    assert list(stored) == ["BREAD"] and stored["BREAD"].active and stored["BREAD"].price_minor == 400
    assert not audit(app, "products.catalog_synced") and not events(app, "product.changed")
    fake_graph.clear_failures()
    with pytest.raises(CatalogError, match="Meta refused to list catalog 123"):
        run(app, graph, admin, "123")


@pytest.mark.database
def test_hostile_items_are_refused_one_by_one_with_their_reason(app, graph, fake_graph, admin):
    fake_graph.add_catalog(
        CATALOG,
        [
            item("HUGE", "Gold", "€99999999999999.00"),
            item("FUNNY", "Monopoly money", "12.00", currency="XYZ"),
            item("LONG", "x" * 300, "€1.00"),
            {"id": "7100", "name": "No retailer id", "price": "€1.00", "currency": "EUR"},
            item("TWICE", "First", "€1.00"),
            item("TWICE", "Second", "€2.00"),
            item("FINE", "Fine", "€2.00"),
        ],
    )
    result = run(app, graph, admin)
    reasons = {rejected.retailer_id: rejected.reason for rejected in result.rejected}
    assert "more than SigDesk accepts" in reasons["HUGE"] and reasons["HUGE"].startswith("price:")
    assert reasons["FUNNY"].startswith("currency:") and "XYZ" in reasons["FUNNY"]
    assert reasons["LONG"].startswith("name:") and "?" in reasons
    assert "more than once" in reasons["TWICE"]
    assert result.created == 2 and sorted(products(app)) == ["FINE", "TWICE"]
    assert products(app)["TWICE"].name == "First"
    assert audit(app, "products.catalog_synced")[0].detail["refused"] == 5


@pytest.mark.database
def test_the_catalog_comes_from_the_setting_or_else_the_one_linked_to_the_account(app, graph, fake_graph, admin):
    with pytest.raises(CatalogError, match="No Meta catalog is linked"):
        run(app, graph, admin, None)
    fake_graph.add_catalog(CATALOG, [item("A", "A", "€1.00")])
    assert run(app, graph, admin, None).catalog_id == CATALOG
    fake_graph.add_catalog("990000", [item("B", "B", "€1.00")])
    with pytest.raises(CatalogError, match="Several catalogs"):
        run(app, graph, admin, None)
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "sales.catalog_id", "990000")
    assert run(app, graph, admin, None).catalog_id == "990000"


@pytest.mark.database
def test_the_button_queues_a_sync_that_the_worker_runs_and_the_page_reports(app, owner, auth, fake_graph):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        factories.whatsapp_connection(session, state.cipher, fake_graph.url)
        state.outbox(session)  # the worker's first pass: the consumer starts at the end of the log
    fake_graph.add_catalog(CATALOG, [item("WATER", "Water", "€6.50"), item("BAD", "Bad", "1 XYZ", currency=None)])
    response = auth.post("/settings/products/catalog/sync", form_page="/settings/products/catalog")
    assert response.status_code == 302
    assert not products(app)
    page = auth.client.get("/settings/products/catalog").get_data(as_text=True)
    assert "waiting for the background worker" in page
    with state.database.session() as session:
        state.outbox(session)
    assert products(app)["WATER"].price_minor == 650
    page = auth.client.get("/settings/products/catalog").get_data(as_text=True)
    assert "1 created, 0 updated" in page and "BAD (price:" in page
    assert audit(app, "products.catalog_synced")[0].actor == owner.email

    fake_graph.fail_catalog_page(1, 131000, status=500)
    auth.post("/settings/products/catalog/sync", form_page="/settings/products/catalog")
    with state.database.session() as session:
        state.outbox(session)
        failed = last_sync(session)
    assert not failed.ok and "nothing was changed" in failed.words
    assert "Last sync failed" in auth.client.get("/settings/products/catalog").get_data(as_text=True)


@pytest.mark.database
def test_the_catalog_setting_takes_digits_only_and_can_be_cleared(app, owner, auth):
    bad = auth.post("/settings/products/catalog/settings", {"sales.catalog_id": "12ab"}, "/settings/products/catalog")
    assert bad.status_code == 400 and "not a numeric ID" in bad.get_data(as_text=True)
    auth.post("/settings/products/catalog/settings", {"sales.catalog_id": " 4455 "}, "/settings/products/catalog")
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        assert settings.get(session, state.cipher, "sales.catalog_id") == "4455"
    auth.post("/settings/products/catalog/settings", {"sales.catalog_id": ""}, "/settings/products/catalog")
    with state.database.session() as session:
        assert settings.get(session, state.cipher, "sales.catalog_id") == ""


def sigdesk(app, *args: str):
    config = app.extensions["sigdesk"].config
    return CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args])


@pytest.mark.database
def test_the_cli_syncs_and_prints_the_counts_or_exits_1_changing_nothing(app, fake_graph):
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        factories.whatsapp_connection(session, state.cipher, fake_graph.url)
    fake_graph.add_catalog(CATALOG, [item("A", "A", "€1.00"), item("B", "B", "€2.00"), item("C", "C", "€3,000.00")])
    result = sigdesk(app, "products", "sync-catalog")
    assert result.exit_code == 0, result.output
    assert (
        result.output.strip().splitlines()[-1]
        == f"Catalog {CATALOG}: 3 created, 0 updated, 0 unchanged, 0 deactivated, 0 refused"
    )
    assert products(app)["C"].price_minor == 300000 and audit(app, "products.catalog_synced")[0].channel == "cli"
    fake_graph.catalogs[CATALOG] = [item("A", "A", "€9.00")]
    fake_graph.fail_catalog_page(1, 4)
    failed = sigdesk(app, "products", "sync-catalog")
    assert failed.exit_code == 1 and "nothing was changed" in failed.output
    with state.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Product).where(Product.active.is_(True))) == 3
    assert products(app)["A"].price_minor == 100
    refused = sigdesk(app, "products", "sync-catalog", "--catalog", "12x")
    assert refused.exit_code == 1 and "not a numeric catalog ID" in refused.output
    assert Decimal(products(app)["B"].price_minor) == 200
