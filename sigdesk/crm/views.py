"""The Contacts page (a filtered, sorted, keyset-paged table with saved segments and bulk actions) and the
contact page (the editable record, its timeline, consent and stage history).

Plain GET forms and CSRF-checked form posts, so every page works without its script; contacts.js adds
filtering without a reload (it fetches the table as an HTML fragment) and keeps the URL in step, so a
filter survives leaving the page and can be bookmarked.

The page reads its query string into filter definitions (sigdesk.segments.filters' JSON, tags and
stages by name) and hands them to the segments feature's finder, counter and commands: the filter is
compiled to SQL there and nowhere else. Every change goes through one command (contacts, lifecycle,
consent, segments); a refused form comes back with the message next to its field and what was typed.
The blueprint keeps the name "contacts", so the endpoints are contacts.index, contacts.view...
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from sigdesk.auth.services import active_users
from sigdesk.consent import commands as consent_commands
from sigdesk.consent.services import history as consent_history
from sigdesk.contacts import commands
from sigdesk.contacts.phones import pretty
from sigdesk.contacts.services import ContactData, get_contact
from sigdesk.crm.services import CONSENT_WORDS, record_context
from sigdesk.timeline import timeline
from sigdesk.custom_fields.services import FieldDefinition, definitions
from sigdesk.errors import UserError
from sigdesk.lifecycle import services as lifecycle
from sigdesk.models import User
from sigdesk.paging import Page
from sigdesk.roles import can
from sigdesk.segments.commands import BulkTarget, bulk_update, create_segment
from sigdesk.segments.filters import FIELD_PREFIX
from sigdesk.segments.services import (
    DEFAULT_SORT,
    SORTS,
    SegmentData,
    count_contacts,
    definition_of,
    find_contacts,
    list_segments,
)
from sigdesk.web import acting, actor, db_session, requires, writing

log = logging.getLogger(__name__)

bp = Blueprint("contacts", __name__, url_prefix="/contacts")

PAGE_SIZE = 50
UNCOMBINABLE = (
    "The open segment and this page's conditions cannot be saved as one segment, because one of them "
    "matches any of several conditions. Save the page's conditions without the segment, or match all."
)
MAX_QUERY = 2000
MAX_CONDITIONS = 20
# The table's columns: key, heading, shown unless the person hid it (the column chooser, kept in localStorage).
COLUMN_CHOICES = (
    ("phone", "Phone", True),
    ("email", "Email", True),
    ("company", "Company", True),
    ("city", "City", False),
    ("country", "Country", False),
    ("language", "Language", False),
    ("tags", "Tags", True),
    ("stage", "Stage", True),
    ("consent", "Marketing", True),
    ("owner", "Owner", False),
    ("lead_score", "Lead score", False),
    ("last_contact", "Last contact", True),
    ("created", "Added", False),
)
# The sort each column's heading offers (find_contacts' names), and how each sort reads (ascending, descending).
COLUMN_SORTS = {
    "company": "company",
    "city": "city",
    "country": "country",
    "stage": "stage",
    "lead_score": "lead_score",
    "last_contact": "last_contact_at",
    "created": "created_at",
}
SORT_WORDS = {
    "name": ("Name, A to Z", "Name, Z to A"),
    "created_at": ("Added, oldest first", "Added, newest first"),
    "updated_at": ("Edited, longest ago first", "Edited, most recently first"),
    "last_contact_at": ("Last contact, longest ago first", "Last contact, most recent first"),
    "company": ("Company, A to Z", "Company, Z to A"),
    "city": ("City, A to Z", "City, Z to A"),
    "country": ("Country, A to Z", "Country, Z to A"),
    "stage": ("Stage, first to last", "Stage, last to first"),
    "lead_score": ("Lead score, lowest first", "Lead score, highest first"),
}
# Sorts that read best largest (or latest) first when a heading is clicked the first time.
DESCENDING_FIRST = ("created_at", "updated_at", "last_contact_at", "lead_score")
LAST_CONTACT = {
    "7": "In the last 7 days",
    "30": "In the last 30 days",
    "90": "In the last 90 days",
    "over90": "Over 90 days ago",
    "never": "Never in touch",
}
RECORD_FIELDS = ("name", "phone", "email", "company", "city", "country", "language", "notes")
EXPORT_ENDPOINT = "exports.contacts_export_page"  # takes ?filter=<definition JSON>&q= or ?ids=1,2,3
# Which form field holds the bulk action's value: the tag's or stage's id, the owner's user id.
BULK_VALUES = {"tag": "tag", "untag": "tag", "set_stage": "stage", "set_owner": "owner"}


def _int(value: Any) -> int | None:
    """A positive whole number written as text (or given as one), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value < 2**53 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 16:
        return int(value) or None
    return None


# --- sorting ------------------------------------------------------------------------------------------


def sort_choices(custom: list[FieldDefinition]) -> dict[str, str]:
    """Every sort find_contacts takes, both ways, the custom fields too: {sort: words}, newest first leading."""
    choices = {DEFAULT_SORT: SORT_WORDS["created_at"][1]}
    for key in SORTS:
        ascending, descending = SORT_WORDS.get(key, (f"{key}, ascending", f"{key}, descending"))
        choices.setdefault(key, ascending)
        choices.setdefault(f"-{key}", descending)
    for definition in custom:
        key = f"{FIELD_PREFIX}{definition.key}"
        if definition.kind in ("number", "currency", "boolean"):
            ways = ("lowest first", "highest first")
        elif definition.kind == "date":
            ways = ("earliest first", "latest first")
        else:
            ways = ("A to Z", "Z to A")
        choices[key] = f"{definition.label}, {ways[0]}"
        choices[f"-{key}"] = f"{definition.label}, {ways[1]}"
    return choices


def heading_sort(current: str, key: str) -> str:
    """The sort a column's heading links to: the other way round when the table is sorted on it already."""
    if current == key:
        return f"-{key}"
    if current == f"-{key}":
        return key
    return f"-{key}" if key in DESCENDING_FIRST else key


# --- the filter in the URL ----------------------------------------------------------------------------


@dataclass
class Filter:
    """The Contacts page's state, read from the query string (so it can be bookmarked)."""

    q: str
    sort: str
    segment_id: int | None
    match: str
    quick: dict[str, str]  # tag, stage (by name), consent, owner, last_contact
    extra: list[dict[str, Any]]  # conditions added by hand: field, op, value (as typed)
    cursor: str | None

    def own(self) -> dict[str, Any] | None:
        """The page's own conditions as one filter definition (None: no conditions)."""
        conditions: list[dict[str, Any]] = []
        quick = self.quick
        if quick.get("tag"):
            conditions.append({"field": "tag", "op": "has", "value": quick["tag"]})
        if quick.get("stage") == "none":
            conditions.append({"field": "stage", "op": "is_empty", "value": None})
        elif quick.get("stage"):
            conditions.append({"field": "stage", "op": "is", "value": quick["stage"]})
        if quick.get("consent"):
            conditions.append({"field": "consent", "op": "is", "value": quick["consent"]})
        if quick.get("owner") == "none":
            conditions.append({"field": "owner", "op": "is_empty", "value": None})
        elif _int(quick.get("owner")):
            conditions.append({"field": "owner", "op": "is", "value": _int(quick["owner"])})
        last = quick.get("last_contact")
        if last == "never":
            conditions.append({"field": "last_contact_at", "op": "is_empty", "value": None})
        elif last == "over90":
            conditions.append({"field": "last_contact_at", "op": "more_than_days_ago", "value": 90})
        elif last in LAST_CONTACT:
            conditions.append({"field": "last_contact_at", "op": "within_last_days", "value": int(last)})
        conditions.extend(_typed_condition(item) for item in self.extra)
        if not conditions:
            return None
        return {"match": self.match if self.extra else "all", "conditions": conditions}

    def segment(self, session: Session) -> dict[str, Any] | None:
        """The open segment's definition (a segment deleted since is refused, naming `segment`)."""
        if self.segment_id is None:
            return None
        return definition_of(session, self.segment_id, field="segment").model_dump(mode="json")

    def definitions(self, session: Session) -> list[dict[str, Any]]:
        """Every definition that must hold: the open segment's and the page's own."""
        return [found for found in (self.segment(session), self.own()) if found]

    def merged(self, session: Session) -> dict[str, Any] | None:
        """One definition for all of them, for saving a segment or an export; None when no single
        definition says the same. A definition matches all or any of a flat list of conditions (no
        nesting), so "the segment AND (a OR b)" cannot be written as one: rather than drop conditions
        and export or save more contacts than the list shows, the caller refuses."""
        found = self.definitions(session)
        if len(found) < 2:
            return found[0] if found else {"match": "all", "conditions": []}
        saved, own = found
        if any(item.get("match") == "any" and len(item.get("conditions") or []) > 1 for item in found):
            return None
        return {"match": "all", "conditions": [*saved["conditions"], *own["conditions"]]}

    def query(self, **changes: Any) -> str:
        """The query string of this filter (with `changes`), as links and the bulk form carry it."""
        pairs: list[tuple[str, str]] = []
        if self.q:
            pairs.append(("q", self.q))
        if self.sort != DEFAULT_SORT:
            pairs.append(("sort", self.sort))
        if self.segment_id:
            pairs.append(("segment", str(self.segment_id)))
        if self.match != "all":
            pairs.append(("match", self.match))
        pairs.extend((key, value) for key, value in self.quick.items() if value)
        for item in self.extra:
            pairs.extend((("f", str(item["field"])), ("o", str(item["op"])), ("v", str(item.get("value") or ""))))
        for key, value in changes.items():
            pairs = [pair for pair in pairs if pair[0] != key]
            if value:
                pairs.append((key, str(value)))
        return urlencode(pairs)


NO_VALUE_OPS = ("is_empty", "is_set")
DAY_OPS = ("within_last_days", "more_than_days_ago")
LIST_OPS = ("in", "between")
NUMBER_OPS = ("eq", "gt", "lt")


def _typed_condition(item: Mapping[str, Any]) -> dict[str, Any]:
    """A condition typed into the page (every value is text) in the JSON types the filter takes: no value
    for is_empty and is_set, whole days, numbers, lists (comma-separated), true/false. What it means is
    the filter's to decide (sigdesk.segments.filters), which refuses a value of the wrong kind."""
    field, op, text = str(item["field"]), str(item["op"]), str(item.get("value") or "").strip()
    value: Any = text
    if op in NO_VALUE_OPS:
        value = None
    elif op in DAY_OPS or (field == "owner" and text != "none"):
        value = _int(text) if _int(text) is not None else text
    elif op in LIST_OPS:
        value = [_number_or_text(part.strip(), op == "between") for part in text.split(",") if part.strip()]
    elif op in NUMBER_OPS:
        value = _number_or_text(text, True)
    elif text.lower() in ("true", "false") and op == "is" and field.startswith(FIELD_PREFIX):
        value = text.lower() == "true"
    return {"field": field, "op": op, "value": value}


def _number_or_text(text: str, numeric: bool) -> Any:
    """A number when the text is a finite one; else the text, which the filter refuses for a number
    field (a 4xx naming the condition). "inf" and "nan" parse as floats but no database stores them."""
    if not numeric:
        return text
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def read_filter(args: MultiDict) -> Filter:
    """The filter of a query string; what it cannot read it drops (a URL is not a form to refuse).
    The sort is checked against the choices when the table runs (custom fields need the database)."""
    fields, ops, values = args.getlist("f"), args.getlist("o"), args.getlist("v")
    padded = zip(fields, ops + [""] * len(fields), values + [""] * len(fields))
    extra = [
        {"field": field[:80], "op": (op or "is")[:32], "value": value[:500]}
        for field, op, value in list(padded)[:MAX_CONDITIONS]
        if field
    ]
    return Filter(
        q=args.get("q", "")[:200].strip(),
        sort=(args.get("sort") or DEFAULT_SORT)[:100],
        segment_id=_int(args.get("segment", "")),
        match="any" if args.get("match") == "any" else "all",
        quick={key: args.get(key, "")[:100] for key in ("tag", "stage", "consent", "owner", "last_contact")},
        extra=extra,
        cursor=args.get("cursor") or None,
    )


def url_decode(query: str) -> MultiDict:
    """A query string as request.args would hold it."""
    return MultiDict(parse_qsl(query, keep_blank_values=False))


# --- the Contacts page --------------------------------------------------------------------------------


def _team(session: Session) -> list[User]:
    return active_users(session)


def _endpoint(name: str) -> bool:
    return name in current_app.view_functions


def _table(session: Session, found: Filter) -> dict[str, Any]:
    """The table's context; a filter that cannot run (a tag deleted since, a bad value) shows its reason
    above an empty table instead of failing the page."""
    custom = definitions(session)
    sorts = sort_choices(custom)
    if found.sort not in sorts:
        found.sort = DEFAULT_SORT
    problem = None
    results: Page[ContactData] = Page([], None)
    total = 0
    try:
        chosen = found.definitions(session)
        try:
            results = find_contacts(session, chosen, found.q, found.sort, found.cursor, PAGE_SIZE)
        except UserError as refused:
            if refused.field != "cursor":
                raise
            found.cursor = None
            results = find_contacts(session, chosen, found.q, found.sort, None, PAGE_SIZE)
        total = count_contacts(session, chosen, found.q)
    except UserError as refused:
        problem = str(refused)
    team = {user.id: user.name for user in _team(session)}
    export_url = None
    if problem is None and can(actor().role, "contacts.export") and _endpoint(EXPORT_ENDPOINT):
        merged = found.merged(session)  # None: no one definition says what the list shows (no export)
        if merged is not None:
            export_url = url_for(EXPORT_ENDPOINT, filter=json.dumps(merged), q=found.q or None)
    return {
        "export_url": export_url,
        "results": results,
        "total": total,
        "problem": problem,
        "filter": found,
        "owners": team,
        "pretty": pretty,
        "consent_words": CONSENT_WORDS,
        "columns": COLUMN_CHOICES,
        "column_sorts": COLUMN_SORTS,
        "heading_sort": heading_sort,
        "sorts": sorts,
        "custom_fields": custom,
        "next_url": url_for("contacts.index", **url_decode(found.query(cursor=results.next_cursor)).to_dict())
        if results.next_cursor
        else None,
    }


@bp.get("/")
@requires("contacts.view")
def index(added: dict[str, Any] | None = None):
    """The table; `added` carries a refused "Add contact" form back with its message and what was typed."""
    session = db_session()
    found = read_filter(request.args)
    context = _table(session, found)
    fragment = request.args.get("fragment")
    if fragment == "rows":
        headers = {"Cache-Control": "no-store", "X-Next-Url": context["next_url"] or ""}
        return render_template("contacts/_rows.html", **context), 200, headers
    if fragment == "table":
        return render_template("contacts/_table.html", **context), 200, {"Cache-Control": "no-store"}
    role = actor().role
    segments = _segments(session)
    return render_template(
        "contacts/index.html",
        tags=lifecycle.list_tags(session),
        stages=lifecycle.list_stages(session),
        team=_team(session),
        last_contact=LAST_CONTACT,
        segments=segments,
        current_segment=next((item for item in segments if item["id"] == found.segment_id), None),
        may_save_segment=can(role, "segments.manage"),
        may_delete=can(role, "contacts.delete"),
        may_add=can(role, "contacts.edit"),
        added=added,
        links=_links(role),
        **context,
    )


# Other features' pages the Contacts page links to, when the role may open them.
LINKS = (("imports.index", "Import", "link-import"), ("merge.duplicates", "Duplicates", "link-duplicates"))


def _links(role: str) -> list[dict[str, str]]:
    found = []
    for endpoint, label, key in LINKS:
        view = current_app.view_functions.get(endpoint)
        if view is not None and can(role, getattr(view, "permission", "")):
            found.append({"url": url_for(endpoint), "label": label, "id": key})
    return found


def _segments(session: Session) -> list[dict[str, Any]]:
    """Each saved segment with its live count (a segment that no longer runs, say a tag it names was
    deleted, shows no count)."""
    listed = []
    for segment in list_segments(session):
        try:
            count: int | None = count_contacts(session, SegmentData.of(segment).definition)
        except (UserError, ValueError):
            count = None
        listed.append({"id": segment.id, "name": segment.name, "count": count})
    return listed


@bp.post("/segments")
@requires("segments.manage")
def save_segment():
    """Save what the page filters on (the open segment's conditions and the page's own) as a segment."""
    found = read_filter(url_decode(request.form.get("query", "")[:MAX_QUERY]))
    try:
        with writing() as session:
            definition = found.merged(session)
            if definition is None:
                raise UserError(UNCOMBINABLE, field="match")
            segment_id = create_segment(session, acting(), request.form.get("name", ""), definition).id
    except UserError as refused:
        flash(f"The segment was not saved: {refused}", "error")
        return redirect(url_for("contacts.index", **url_decode(found.query()).to_dict()))
    flash("Saved the segment.")
    return redirect(url_for("contacts.index", segment=segment_id))


@bp.post("/bulk")
@requires("contacts.edit")
def bulk():
    """A bulk action on the chosen contacts, or on everything the filter finds (`all`): the segments
    feature's bulk_update, which checks the role for each action (a refusal for the role is a 403)."""
    action = request.form.get("action", "")
    found = read_filter(url_decode(request.form.get("query", "")[:MAX_QUERY]))
    back = redirect(url_for("contacts.index", **url_decode(found.query()).to_dict()))
    ids = [number for number in (_int(value) for value in request.form.getlist("ids")) if number]
    whole = request.form.get("all") == "1"
    if not ids and not whole:
        flash("Choose some contacts first (or all that match).", "error")
        return back
    value = _int(request.form.get(BULK_VALUES.get(action, "_"), ""))  # the form's ids; empty: None
    if action in ("tag", "untag") and value is None:
        flash("Choose a tag first.", "error")
        return back
    try:
        with writing() as session:
            target = BulkTarget(definition=found.definitions(session), q=found.q) if whole else BulkTarget(ids=ids)
            result = bulk_update(session, acting(), target, action, value)
    except UserError as refused:
        if refused.status == 403:
            raise
        flash(str(refused), "error")
        return back
    kept = f" {result.refused} kept: they have conversations (anonymise them instead)." if result.refused else ""
    flash(f"Done: {result.done} contact(s) changed.{kept}")
    return back


# --- one contact ---------------------------------------------------------------------------------------


def _duration(seconds: int) -> str:
    if seconds < 3600:
        return f"{max(1, seconds // 60)} min"
    if seconds < 86400 * 2:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _contact_page(contact_id: int, refused: UserError | None = None, form: str = ""):
    session = db_session()
    user = actor()
    context = record_context(session, contact_id, user)
    before = request.args.get("before") or None
    try:
        entries = timeline(session, user, contact_id, before, 30)
    except UserError:
        entries = timeline(session, user, contact_id, None, 30)
    page_ = render_template(
        "contacts/view.html",
        entries=entries,
        stage_history=list(reversed(lifecycle.stage_history(session, contact_id))),
        consent_events=consent_history(session, contact_id, None, 20).items,
        duration=_duration,
        team=_team(session),
        refused={"form": form, "message": str(refused), "field": refused.field or "", "typed": request.form}
        if refused
        else None,
        may_delete=can(actor().role, "contacts.delete"),
        may_consent=can(actor().role, "consent.record"),
        **context,
    )
    return page_, (refused.status if refused else 200)


@bp.get("/<int:contact_id>")
@requires("contacts.view")
def view(contact_id: int):
    return _contact_page(contact_id)


@bp.get("/<int:contact_id>/timeline")
@requires("contacts.view")
def more_timeline(contact_id: int):
    """The next page of the timeline as a fragment (the page's "Older" link without its script)."""
    entries = timeline(db_session(), actor(), contact_id, request.args.get("before") or None, 30)
    return (
        render_template("contacts/_timeline.html", entries=entries, contact_id=contact_id),
        200,
        {"Cache-Control": "no-store"},
    )


def _changes(form: MultiDict, custom: list[FieldDefinition]) -> dict[str, Any]:
    """The record's changes by API name from a posted form, as update_contact takes them: only what the
    form carried, so a short form (the inbox panel's) leaves the rest alone. Custom fields come as typed
    text (`fields.<key>`; a checkbox says it was there with `fields.<key>.present`)."""
    changes: dict[str, Any] = {name: form.get(name, "") for name in RECORD_FIELDS if name in form}
    if "owner_id" in form:
        text = form.get("owner_id", "").strip()
        number = _int(text)
        if text and number is None:
            raise UserError("Choose a team member as the owner", field="owner_id")
        changes["owner_id"] = number
    values: dict[str, Any] = {}
    for definition in custom:
        name = f"fields.{definition.key}"
        if definition.kind == "boolean":
            if f"{name}.present" in form:
                values[definition.key] = "true" if form.get(name) == "true" else ""
        elif definition.kind == "choices":
            if f"{name}.present" in form or name in form:
                values[definition.key] = [item for item in form.getlist(name) if item]
        elif name in form:
            values[definition.key] = form.get(name, "")
    if values:
        changes["fields"] = values
    if "tags_present" in form:
        changes["tags"] = [name for name in form.getlist("tags") if name]
    if "stage" in form:
        changes["stage"] = form.get("stage") or None
    return changes


@bp.post("/<int:contact_id>")
@requires("contacts.edit")
def update(contact_id: int):
    """Save the record form: the fields, owner, custom fields, tags and stage, in one transaction."""
    form = request.form
    try:
        with writing() as session:
            changes = _changes(form, definitions(session))
            stored = get_contact(session, contact_id).wa_id
            if stored and changes.get("phone", "").strip() in (pretty(stored), stored, f"+{stored}"):
                del changes["phone"]  # shown as stored: a number Meta gave need not pass today's numbering plan
            commands.update_contact(session, acting(), contact_id, changes, from_text=True)
    except UserError as refused:
        return _contact_page(contact_id, refused, "record")
    flash("Saved the contact.")
    return redirect(url_for("contacts.view", contact_id=contact_id))


@bp.post("/<int:contact_id>/consent")
@requires("consent.record")
def consent(contact_id: int):
    """An agent records the customer's word on marketing, with what shows it (source: agent)."""
    status = request.form.get("status", "")
    try:
        with writing() as session:
            consent_commands.record_consent(
                session, acting(), contact_id, status, "agent", request.form.get("evidence") or None
            )
    except UserError as refused:
        return _contact_page(contact_id, refused, "consent")
    flash(
        "Recorded: " + ("opted out of marketing." if status == consent_commands.OPTED_OUT else "opted in to marketing.")
    )
    return redirect(url_for("contacts.view", contact_id=contact_id))


@bp.post("/new")
@requires("contacts.edit")
def add():
    """A customer added by hand (one who has not written yet, a number from a card), through the command
    the API's POST /contacts calls; the number is read with the default country when it has no prefix."""
    typed = {name: request.form.get(name, "") for name in ("phone", "name", "email", "company")}
    try:
        with writing() as session:
            standard = {name: value for name, value in typed.items() if name != "phone" and value.strip()}
            contact = commands.create_contact(session, acting(), typed["phone"], from_text=True, **standard)
            contact_id = contact.id
    except UserError as refused:
        response = index({"message": str(refused), "field": refused.field or "", "typed": typed})
        return response, refused.status
    flash("Added the contact.")
    return redirect(url_for("contacts.view", contact_id=contact_id))


@bp.post("/<int:contact_id>/delete")
@requires("contacts.delete")
def delete(contact_id: int):
    try:
        with writing() as session:
            commands.delete_contact(session, acting(), contact_id)
    except UserError as refused:
        return _contact_page(contact_id, refused, "delete")
    flash("Deleted the contact.")
    return redirect(url_for("contacts.index"))
