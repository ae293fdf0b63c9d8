"""Importing a catalogue: products created and updated by SKU through the sales commands, every bad row refused
with its reason, `sigdesk products import`, and undo (created ones deleted unless orders name them, updated ones
put back)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.errors import UserError
from sigdesk.imports import commands
from sigdesk.models import ImportJob, Product
from tests import factories
from tests.commanding import events
from tests.imports.helpers import finish, refused, run_kind, start_kind
from tests.imports.test_cli import sigdesk

pytestmark = pytest.mark.database
HEADER = "SKU,Name,Price,Currency,Category,Active,Reorder days\n"


@pytest.fixture
def db(app):
    return app.extensions["sigdesk"].database


def products(db) -> dict[str, Product]:
    with db.session() as session:
        return {p.sku: p for p in session.scalars(select(Product))}


def test_new_skus_are_created_known_ones_updated_and_bad_rows_refused_with_reasons(app, db):
    with db.session() as session:
        factories.product(session, sku="JUG", name="Jug", price_minor=900, currency="EUR", category="water")
        session.commit()
    data = (
        HEADER + "JUG,,9.50,,,no,30\n"
        "W20,Water 20 L,3.50,EUR,water,yes,14\n"
        "W20,Again,1,EUR,,,\n"
        "NEG,Negative,-1,EUR,,,\n"
        "CUR,Bad currency,1,EURO,,,\n"
        "FLAG,Bad flag,1,EUR,,maybe,\n"
        "DAYS,Bad days,1,EUR,,,soon\n"
        "NONAME,,1,EUR,,,\n"
        ",No sku,1,EUR,,,\n"
    ).encode()
    job = run_kind(app, "products", "catalogue.csv", data)
    assert (job.state, job.created, job.updated, job.rejected) == ("done", 1, 1, 7)
    found = products(db)
    assert (found["JUG"].name, found["JUG"].price_minor, found["JUG"].active, found["JUG"].reorder_days) == (
        "Jug",
        950,
        False,
        30,
    )
    assert (found["W20"].price_minor, found["W20"].category, found["W20"].reorder_days) == (350, "water", 14)
    assert set(found) == {"JUG", "W20"}
    reasons = refused(app, job.id)
    assert "Duplicate of line 3" in reasons[4]
    assert "negative" in reasons[5]
    assert "not a currency" in reasons[6]
    assert "not yes or no" in reasons[7]
    assert "whole number of days" in reasons[8]
    assert "needs a name" in reasons[9]
    assert "no SKU" in reasons[10]
    assert len(events(app, "product.changed")) == 2


def test_a_mapping_without_sku_is_refused(app):
    with pytest.raises(UserError, match="sku"):
        start_kind(app, "products", "p.csv", b"Name,Price\nJug,1\n")


def test_undo_deletes_created_products_no_order_names_and_puts_updated_ones_back(app, db):
    with db.session() as session:
        factories.product(session, sku="JUG", name="Jug", price_minor=900, currency="EUR")
        session.commit()
    job = run_kind(
        app, "products", "p.csv", (HEADER + "JUG,Big jug,12,,,,\nNEW,New,1,EUR,,,\nUSED,Used,2,EUR,,,\n").encode()
    )
    with db.session() as session:
        used = session.scalar(select(Product).where(Product.sku == "USED"))
        factories.order(session, lines=[(used, 1, 200)])
        commands.undo_import(session, Actor.system("cli"), job.id)
        session.commit()
    finish(app)
    found = products(db)
    assert set(found) == {"JUG", "USED"}
    assert (found["JUG"].name, found["JUG"].price_minor) == ("Jug", 900)
    with db.session() as session:
        job = session.get(ImportJob, job.id)
        assert (job.state, job.removed, job.kept) == ("undone", 3, 1)


def test_the_cli_imports_products_and_prints_the_counts(app, tmp_path):
    source = tmp_path / "catalogue.csv"
    source.write_text(HEADER + "W20,Water,3.50,EUR,,,\nBAD,,x,EUR,,,\n", encoding="utf-8")
    result = sigdesk(app, "products", "import", str(source))
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "1 created, 0 updated, 1 rejected"
    assert (tmp_path / "catalogue-errors.csv").exists()
    assert sigdesk(app, "products", "import", str(tmp_path / "missing.csv")).exit_code == 1
