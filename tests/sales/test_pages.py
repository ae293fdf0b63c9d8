"""Settings → Products: admins list, search, add and edit products; a refused form comes back with what was
typed and the message by the field; placeholders from carts are flagged until the owner completes them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sigdesk.models.sales import Product
from tests import factories

pytestmark = pytest.mark.database


def test_an_admin_adds_searches_edits_and_deactivates_products(app, auth, owner):
    page = auth.client.get("/admin/products")
    assert page.status_code == 200 and "No products yet" in page.get_data(as_text=True)
    assert 'data-setting="products"' in page.get_data(as_text=True)
    added = auth.post(
        "/admin/products",
        {
            "sku": "WATER-20",
            "name": "Water 20 L",
            "price": "2.50",
            "currency": "EUR",
            "reorder_days": "30",
            "active": "true",
        },
    )
    assert added.status_code == 302
    listed = auth.client.get("/admin/products?q=water").get_data(as_text=True)
    assert "WATER-20" in listed and "2.50 EUR" in listed and "30 days" in listed
    with app.extensions["sigdesk"].database.session() as session:
        product = session.scalars(select(Product).where(Product.sku == "WATER-20")).one()
        product_id = product.id
    saved = auth.post(
        f"/admin/products/{product_id}",
        {"sku": "WATER-20", "name": "Water jug 20 L", "price": "2.75", "currency": "EUR", "active": "true"},
        form_page=f"/admin/products/{product_id}",
    )
    assert saved.status_code == 302
    off = auth.post(f"/admin/products/{product_id}/active", {"active": "false"}, form_page="/admin/products")
    assert off.status_code == 302
    with app.extensions["sigdesk"].database.session() as session:
        product = session.get(Product, product_id)
        assert (product.name, product.price_minor, product.active, product.reorder_days) == (
            "Water jug 20 L",
            275,
            False,
            None,
        )


def test_a_refused_product_form_keeps_what_was_typed_and_names_the_field(app, auth, owner):
    typed = {"sku": "CAKE-1", "name": "Birthday cake", "price": "12.345", "currency": "EUR", "category": "Cakes"}
    refused = auth.post("/admin/products", typed)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'id="price-error"' in html and "at most 2 decimals" in html
    assert 'value="Birthday cake"' in html and 'value="12.345"' in html and 'value="Cakes"' in html
    with app.extensions["sigdesk"].database.session() as session:
        assert session.scalars(select(Product)).all() == []
        taken = factories.product(session, sku="TAKEN").id
        other = factories.product(session, sku="OTHER", name="Other").id
    clash = auth.post(
        f"/admin/products/{other}",
        {"sku": "TAKEN", "name": "Other", "currency": "EUR"},
        form_page=f"/admin/products/{other}",
    )
    assert clash.status_code == 409 and 'id="sku-error"' in clash.get_data(as_text=True)
    assert taken


def test_placeholders_from_carts_are_flagged_until_completed_and_agents_cannot_open_the_page(app, auth, owner):
    with app.extensions["sigdesk"].database.session() as session:
        made = factories.product(
            session, sku="CART-9", name="Unknown product CART-9", placeholder=True, price_minor=None
        )
        made_id = made.id
    listed = auth.client.get("/admin/products").get_data(as_text=True)
    assert 'id="placeholder-notice"' in listed and "to complete" in listed
    assert "to complete" in auth.client.get("/admin/products?show=placeholders").get_data(as_text=True)
    auth.post(
        f"/admin/products/{made_id}",
        {"sku": "CART-9", "name": "Oat milk", "price": "2.10", "currency": "EUR", "active": "true"},
        form_page=f"/admin/products/{made_id}",
    )
    assert 'id="placeholder-notice"' not in auth.client.get("/admin/products").get_data(as_text=True)
    auth.logout()
    agent = auth.create_user("agent")
    auth.login(agent)
    assert auth.client.get("/admin/products").status_code == 403
