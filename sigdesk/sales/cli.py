"""`sigdesk products ...`: work with the product catalogue from the command line.

`products sync-catalog` reads the Meta catalog and applies it here and now, in one transaction: a catalog
that cannot be read changes nothing and exits 1 with the reason. Other product commands (an import) can
join the group (products.add_command).
"""

from __future__ import annotations

from typing import Any

import click


@click.group("products")
def products() -> None:
    """Work with products: sync them from the business's Meta catalog."""


@products.command("sync-catalog")
@click.option(
    "--catalog",
    "catalog_id",
    metavar="ID",
    help="The Meta catalog's ID (default: the setting sales.catalog_id, else the catalog linked to the account).",
)
@click.pass_obj
def sync_catalog_command(obj: Any, catalog_id: str | None) -> None:
    """Create and update products from the Meta catalog (by retailer ID = SKU); deactivate removed ones."""
    from sigdesk.actor import Actor
    from sigdesk.sales.catalog import sync_catalog
    from sigdesk.whatsapp_account.services import NotConnected, graph_client

    read = 0

    def progress(count: int) -> None:
        nonlocal read
        read = count
        click.echo(f"Read {count} catalog items…", err=True)

    with obj.store(existing=True) as (session, cipher):
        try:
            client = graph_client(session, cipher)
        except NotConnected as exc:
            raise click.ClickException(str(exc)) from exc
        with client:
            result = sync_catalog(session, Actor.system("cli"), client, catalog_id, progress)
    for rejected in result.rejected:
        click.echo(f"Refused {rejected.retailer_id}: {rejected.reason}")
    click.echo(f"Catalog {result.catalog_id}: {result.summary}")
