"""Products from the business's Meta commerce catalog: list it through the Graph client, then create or update
SigDesk's products by SKU (Meta's retailer_id) through the sales commands.

The whole catalog is read before anything is written, so a Graph failure on any page changes nothing. Each
item is then applied in a savepoint of its own: an item with a hostile value (a price too large, a currency
that is not one, a name too long) is refused with its reason and the rest still sync. Products synced
from a Meta catalog earlier (catalog_product_id set) and no longer in it are deactivated, never deleted:
orders keep pointing at them; products entered by hand are left alone. The owner's own field (the reorder
interval) is never touched; a catalog item without a category keeps the category set in SigDesk. A
placeholder product made from a cart's unknown retailer id becomes a real one once the catalog names it.

Prices. Meta's ProductItem `price` reads as the amount formatted for people, with a symbol or a code:
"€12.50", "12.50 EUR", "$1,234.00", "1.234,50 €", "¥1,200". `currency` is the ISO code and wins; a code
or an unambiguous symbol in the text must agree with it. The number's separators are read as people write
them: with both "." and ",", the last one is the decimal mark; one mark used several times groups
thousands; a single mark followed by exactly three digits groups thousands unless the currency has three
decimals (1,200 JPY; 1.234 EUR is 1234 EUR), otherwise it is the decimal mark. A JSON integer is minor units,
as Meta's write API takes prices (1250 = 12.50 EUR). Anything else (floats, other text) is refused, never
guessed; sigdesk.sales.money refuses too many decimals, negatives and amounts above its limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.errors import Refused, UserError
from sigdesk.models import Setting
from sigdesk.models.sales import Product
from sigdesk.sales import commands
from sigdesk.sales.money import MAX_MINOR, currency_code, decimals, from_minor, to_minor
from sigdesk.sales.schemas import CATALOG_ID_MAX, CATEGORY_MAX, NAME_MAX, SKU_MAX
from sigdesk.whatsapp.client import GraphClient
from sigdesk.whatsapp.errors import GraphError

SETTING = "sales.catalog_id"
FIELD = "catalog_id"
ID_RE = re.compile(r"^\d{1,32}$")
PRICE_TEXT_MAX = 40
# Symbols that name one currency only; "$" and "¥" name several, so they prove nothing.
SYMBOLS = {"€": "EUR", "£": "GBP", "₹": "INR", "₩": "KRW", "₺": "TRY", "₽": "RUB", "₪": "ILS", "₫": "VND"}
# Availability Meta reports for an item no longer sold; "out of stock" is a product still sold, for later.
RETIRED = ("discontinued",)
LOOKUP_BATCH = 500
REJECTIONS_KEPT = 50

Progress = Callable[[int], None]


class CatalogError(Refused):
    """The catalog could not be listed (Meta refused, the network failed, no catalog is linked): nothing
    was changed; the message says what to do."""


@dataclass(frozen=True)
class Rejected:
    retailer_id: str
    reason: str


@dataclass
class SyncResult:
    catalog_id: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.deactivated} deactivated, {len(self.rejected)} refused"
        )

    def detail(self) -> dict[str, Any]:
        """For the audit log: counts and the first refusals (retailer ids and reasons; no prices or names)."""
        return {
            "catalog_id": self.catalog_id,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
            "refused": len(self.rejected),
            "refusals": [[item.retailer_id, item.reason] for item in self.rejected[:REJECTIONS_KEPT]],
        }


@dataclass(frozen=True)
class _Item:
    sku: str
    name: str
    price_minor: int | None
    currency: str
    category: str | None
    active: bool
    catalog_product_id: str | None


# --- reading Meta's values --------------------------------------------------------------------------------


def parse_price(raw: Any, currency: Any) -> tuple[int | None, str]:
    """(minor units or None, ISO currency) from a ProductItem's `price` and `currency` (see the module's
    docstring); UserError naming `price` or `currency` otherwise."""
    code = currency_code(currency) if isinstance(currency, str) and currency.strip() else None
    if currency is not None and not isinstance(currency, str):
        raise UserError(f"'{currency}' is not a currency", field="currency")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if code is None:
            raise UserError("The item has neither a price nor a currency", field="currency")
        return None, code
    if isinstance(raw, bool) or isinstance(raw, float):
        raise UserError(f"'{raw}' is not a price SigDesk can read without guessing", field="price")
    if isinstance(raw, int):
        if code is None:
            raise UserError("The item's price has no currency", field="currency")
        if raw < 0:
            raise UserError("An amount of money cannot be negative", field="price")
        if raw > MAX_MINOR:
            raise UserError(f"'{raw}' is more than SigDesk accepts for one amount", field="price")
        return raw, code
    if not isinstance(raw, str) or len(raw) > PRICE_TEXT_MAX:
        raise UserError("The price is not an amount SigDesk can read", field="price")
    text = raw.strip()
    named = {match.upper() for match in re.findall(r"[A-Za-z]+", text)}
    for word in named:
        if len(word) != 3:
            raise UserError(f"'{raw}' is not a price SigDesk can read", field="price")
        stated = currency_code(word, field="price")
        if code is not None and stated != code:
            raise UserError(f"The price '{raw}' is in {stated}, not the item's currency {code}", field="price")
        code = stated
    for symbol, meant in SYMBOLS.items():
        if symbol in text:
            if code is not None and meant != code:
                raise UserError(f"The price '{raw}' is in {meant}, not the item's currency {code}", field="price")
            code = meant
    if code is None:
        raise UserError(f"The price '{raw}' does not say its currency", field="currency")
    number = re.sub(r"[A-Za-z\s\u00a0\u202f$¥" + "".join(SYMBOLS) + "]", "", text)
    if not re.fullmatch(r"-?\d[\d.,']*", number):
        raise UserError(f"'{raw}' is not a price SigDesk can read", field="price")
    return to_minor(_plain_number(number, code), code, field="price"), code


def _plain_number(number: str, currency: str) -> Decimal:
    number = number.replace("'", "")
    if "." in number and "," in number:
        mark = "." if number.rfind(".") > number.rfind(",") else ","
        other = "," if mark == "." else "."
        number = number.replace(other, "").replace(mark, ".")
    else:
        for mark in (".", ","):
            count = number.count(mark)
            if count > 1:
                number = number.replace(mark, "")
            elif count == 1:
                tail = number.split(mark)[1]
                thousands = len(tail) == 3 and decimals(currency) != 3
                number = number.replace(mark, "" if thousands else ".")
    return Decimal(number)


def _text(value: Any, what: str, limit: int, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise UserError(f"The item has no {what}", field=what)
        return None
    if not isinstance(value, str):
        raise UserError(f"The item's {what} is not text", field=what)
    text = value.strip()
    if len(text) > limit:
        raise UserError(f"The item's {what} is longer than {limit} characters", field=what)
    return text


def _category(value: Any) -> str | None:
    """Meta's categories may be a taxonomy path ("Food > Beverages > Water"); the last step is what fits."""
    if isinstance(value, str) and len(value.strip()) > CATEGORY_MAX and ">" in value:
        value = value.rsplit(">", 1)[1]
    return _text(value, "category", CATEGORY_MAX, required=False)


def read_item(item: dict[str, Any]) -> _Item:
    price_minor, currency = parse_price(item.get("price"), item.get("currency"))
    catalog_product_id = item.get("id")
    if catalog_product_id is not None and not (isinstance(catalog_product_id, str) and ID_RE.match(catalog_product_id)):
        raise UserError("The item's Meta id is not a numeric id", field="id")
    availability = str(item.get("availability") or "").strip().lower()
    return _Item(
        sku=_text(item.get("retailer_id"), "retailer_id", SKU_MAX) or "",
        name=_text(item.get("name"), "name", NAME_MAX) or "",
        price_minor=price_minor,
        currency=currency,
        category=_category(item.get("category")),
        active=availability not in RETIRED,
        catalog_product_id=catalog_product_id[:CATALOG_ID_MAX] if catalog_product_id else None,
    )


# --- the sync ----------------------------------------------------------------------------------------------


def configured_catalog(session: Session) -> str | None:
    row = session.get(Setting, SETTING)
    return row.value if row is not None and row.value else None


def resolve_catalog(client: GraphClient, catalog_id: str | None) -> str:
    """The catalog to read: the one given (setting sales.catalog_id), else the one linked to the account."""
    if catalog_id:
        if not ID_RE.match(catalog_id):
            raise CatalogError(f"'{catalog_id}' is not a numeric catalog ID from Meta", field=FIELD)
        return catalog_id
    try:
        linked = client.product_catalogs()
    except GraphError as exc:
        raise CatalogError(_graph_words(exc, None), field=FIELD) from None
    if not linked:
        raise CatalogError(
            "No Meta catalog is linked to the WhatsApp Business Account: link one in Commerce Manager, or enter "
            "its ID as 'Meta catalog ID' in Settings.",
            field=FIELD,
        )
    if len(linked) > 1:
        ids = ", ".join(str(item["id"]) for item in linked[:5])
        raise CatalogError(f"Several catalogs are linked ({ids}): choose one as 'Meta catalog ID'.", field=FIELD)
    return str(linked[0]["id"])


def _graph_words(exc: GraphError, catalog_id: str | None) -> str:
    what = f"catalog {catalog_id}" if catalog_id else "the account's catalogs"
    if exc.code in (10, 100, 200) and not exc.transport:
        return (
            f"Meta refused to list {what} (code {exc.code}): check the catalog ID, and that the access token has "
            "the catalog_management permission and access to the catalog in Business Settings. Nothing was changed."
        )
    return f"The catalog could not be read, so nothing was changed. {exc.human}"


def fetch_catalog(client: GraphClient, catalog_id: str, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every item of the catalog, or CatalogError with nothing read."""
    items: list[dict[str, Any]] = []
    try:
        for page in client.catalog_products(catalog_id):
            items.extend(page)
            if progress is not None:
                progress(len(items))
    except GraphError as exc:
        raise CatalogError(_graph_words(exc, catalog_id), field=FIELD) from None
    return items


def sync_catalog(
    session: Session,
    actor: Actor,
    client: GraphClient,
    catalog_id: str | None = None,
    progress: Progress | None = None,
) -> SyncResult:
    """Read the whole catalog, then create, update or deactivate products in the caller's transaction
    (flushed, not committed). CatalogError when the catalog cannot be read; nothing is written then."""
    catalog_id = resolve_catalog(client, catalog_id or configured_catalog(session))
    items = fetch_catalog(client, catalog_id, progress)
    return apply_catalog(session, actor, catalog_id, items)


def apply_catalog(session: Session, actor: Actor, catalog_id: str, items: list[dict[str, Any]]) -> SyncResult:
    """The writing half of sync_catalog, for a caller that reads the catalog outside its write lock."""
    result = SyncResult(catalog_id)
    seen: set[str] = set()
    readable: list[_Item] = []
    for raw in items:
        retailer_id = raw.get("retailer_id")
        label = retailer_id.strip()[:SKU_MAX] if isinstance(retailer_id, str) and retailer_id.strip() else "?"
        try:
            item = read_item(raw)
        except UserError as exc:
            result.rejected.append(Rejected(label, f"{exc.field}: {exc.message}"))
            seen.add(label)
            continue
        if item.sku in seen:
            result.rejected.append(Rejected(item.sku, "retailer_id: appears more than once in the catalog"))
            continue
        seen.add(item.sku)
        readable.append(item)
    existing = _existing(session, [item.sku for item in readable])
    for item in readable:
        try:
            with session.begin_nested():
                _apply(session, actor, item, existing.get(item.sku), result)
        except UserError as exc:
            result.rejected.append(Rejected(item.sku, f"{exc.field or 'product'}: {exc.message}"))
    gone = session.scalars(
        select(Product).where(Product.catalog_product_id.is_not(None), Product.active.is_(True)).order_by(Product.id)
    ).all()
    for product in gone:
        if product.sku not in seen:
            commands.update_product(session, actor, product.id, active=False)
            result.deactivated += 1
    record_by(session, actor, "products.catalog_synced", f"catalog {catalog_id}", result.detail())
    return result


def _existing(session: Session, skus: list[str]) -> dict[str, Product]:
    found: dict[str, Product] = {}
    for offset in range(0, len(skus), LOOKUP_BATCH):
        chunk = skus[offset : offset + LOOKUP_BATCH]
        found.update((p.sku, p) for p in session.scalars(select(Product).where(Product.sku.in_(chunk))))
    return found


def _price(item: _Item) -> Decimal | None:
    return from_minor(item.price_minor, item.currency) if item.price_minor is not None else None


def _apply(session: Session, actor: Actor, item: _Item, product: Product | None, result: SyncResult) -> None:
    if product is None:
        commands.create_product(
            session,
            actor,
            sku=item.sku,
            name=item.name,
            price=_price(item),
            currency=item.currency,
            category=item.category,
            active=item.active,
            catalog_product_id=item.catalog_product_id,
        )
        result.created += 1
        return
    changes: dict[str, Any] = {}
    if product.name != item.name:
        changes["name"] = item.name
    if product.currency != item.currency or product.price_minor != item.price_minor:
        changes["currency"] = item.currency
        changes["price"] = _price(item)
    if item.category is not None and product.category != item.category:
        changes["category"] = item.category
    if product.active != item.active:
        changes["active"] = item.active
    if product.catalog_product_id != item.catalog_product_id:
        changes["catalog_product_id"] = item.catalog_product_id
    if product.placeholder:
        changes["placeholder"] = False
    if not changes:
        result.unchanged += 1
        return
    commands.update_product(session, actor, product.id, **changes)
    result.updated += 1
