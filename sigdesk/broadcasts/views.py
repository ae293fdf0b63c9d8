"""The Broadcasts section: the list, the new-broadcast form, the draft page (who will get it and who is skipped
and why, a per-recipient preview, a test send) and the campaign page (live progress, pause / resume / cancel,
failures grouped, every recipient with a CSV export); and Settings → Broadcasts.

Forms are plain posts (CSRF-checked by the app's hook) calling sigdesk.broadcasts.commands, the same commands as
the API; a refused form comes back with everything typed and the message beside the field at fault. The two
JSON calls (the campaign's progress, polled every 2 s by ui/static/js/broadcasts.js, and the preview) are
declared with `ui_call()` and read the server's state each time, so leaving the page loses nothing.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.broadcasts import audience, commands, limits, services
from sigdesk.broadcasts.page_schemas import (
    FailureGroup,
    PreviewData,
    PreviewQuery,
    ProgressData,
    ProgressSeries,
)
from sigdesk.broadcasts.schemas import BroadcastIn, BroadcastPath
from sigdesk.contacts.services import contact_name
from sigdesk.custom_fields import services as custom_fields
from sigdesk.db import utcnow
from sigdesk.errors import UserError
from sigdesk.exports.services import safe_cell
from sigdesk.general.clock import as_utc, business_zone, format_moment
from sigdesk.message_templates import placeholders, services as message_templates
from sigdesk.models import Contact, Message, Template
from sigdesk.models.broadcast import FINAL_STATUSES, RECIPIENT_STATES, Broadcast
from sigdesk.models.contact_import import ImportJob
from sigdesk.openapi import ui_call
from sigdesk.roles import can
from sigdesk.segments import services as segments
from sigdesk.settings import commands as settings_commands, services as settings
from sigdesk.settings.specs import MESSAGING_TIERS, SPECS, UTILITY_CONSENT
from sigdesk.web import acting, cipher, db_session, given, requires, writing

bp = Blueprint("broadcasts", __name__, url_prefix="/broadcasts")
settings_bp = Blueprint("broadcast_settings", __name__, url_prefix="/admin/broadcasts")

PERMISSION = "broadcasts.manage"
PAGE_SIZE = 25
RECIPIENTS_PAGE = 50
PREVIEW_CHOICES = 50
CSV_BATCH = 1000
# The chart has about this many points whatever the campaign's length.
CHART_POINTS = 120
AUDIENCE_KINDS = ("segment", "contacts", "import")
# What to do about each kind of pause, after the reason the engine gave.
PAUSE_ADVICE = {
    "person": "Press Resume to go on, or Cancel to stop for good.",
    "quality": "Meta is limiting this number for quality. Check the number's quality rating and the template's "
    "status in WhatsApp Manager; resume only when both are back to normal, ideally to a smaller, better-chosen "
    "audience.",
    "access": "SigDesk can no longer send with the stored access token: connect again in Settings → Connection, "
    "then press Resume.",
    "template": "The template was deleted or is no longer approved: check it in WhatsApp Manager, sync it in "
    "Settings → Templates, then press Resume (or Cancel).",
}
STATE_WORDS = {
    "pending": "Waiting",
    "sending": "Sending",
    "sent": "Sent",
    "delivered": "Delivered",
    "read": "Read",
    "replied": "Replied",
    "failed": "Failed",
    "skipped": "Skipped",
    "unknown": "Unknown",
}
SETTING_KEYS = (
    "whatsapp.messaging_limit",
    "whatsapp.throughput",
    "broadcasts.default_rate",
    "broadcasts.utility_consent",
    "broadcasts.attribution_days",
)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    """The Contacts page's "Broadcast" bulk action posts its selection here, for those who may broadcast."""
    allowed = current_user.is_authenticated and can(current_user.role, PERMISSION)
    return {"broadcast_from_contacts_url": url_for("broadcasts.from_contacts") if allowed else None}


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else None


# --- the list ----------------------------------------------------------------------------------------------


def _done(counts: dict[str, int]) -> int:
    return sum(count for state, count in counts.items() if state not in ("pending", "sending"))


@bp.get("/")
@requires(PERMISSION)
def index():
    cursor = request.args.get("cursor", "")[:200] or None
    try:
        found = services.list_page(db_session(), cursor, PAGE_SIZE)
    except UserError:
        return redirect(url_for("broadcasts.index"))
    return render_template(
        "broadcasts/index.html",
        broadcasts=found.items,
        next_cursor=found.next_cursor,
        done=_done,
        words=STATE_WORDS,
    )


# --- the form: new and edit -----------------------------------------------------------------------------


def _template_view(template: Template) -> dict[str, Any]:
    """What the form shows of a template: its header, body, footer and buttons, and one input per variable."""
    try:
        layout = message_templates.layout(template)
    except placeholders.TemplateMalformed as exc:
        return {"id": template.id, "label": _template_label(template), "problem": str(exc), "slots": []}
    header = body = footer = None
    media = None
    buttons = []
    for item in message_templates.components(template):
        kind = str(item.get("type", "")).lower()
        if kind == "header":
            fmt = str(item.get("format") or "TEXT").lower()
            if fmt == "text":
                header = item.get("text")
            else:
                media = fmt
        elif kind == "body":
            body = item.get("text")
        elif kind == "footer":
            footer = item.get("text")
        elif kind == "buttons" and isinstance(item.get("buttons"), list):
            buttons = [
                {
                    "type": str(button.get("type", "")).lower(),
                    "text": button.get("text") or "",
                    "url": button.get("url"),
                }
                for button in item["buttons"]
                if isinstance(button, dict)
            ]
    slots = []
    for part in layout.parts:
        for slot in part.slots:
            if slot.kind in placeholders.MEDIA:
                label, hint = f"Header {slot.kind}: a link", f"The {slot.kind}'s address, https://…"
            elif slot.kind == "coupon_code":
                label, hint = f"{part.label.capitalize()}: the coupon code", None
            else:
                label, hint = f"{part.label.capitalize()} {{{{{slot.key}}}}}", None
            slots.append({"key": f"t{template.id}.{part.name}.{slot.key}", "label": label, "hint": hint})
    return {
        "id": template.id,
        "label": _template_label(template),
        "name": template.name,
        "language": template.language,
        "category": (template.category or "").lower(),
        "header": header,
        "media": media,
        "body": body,
        "footer": footer,
        "buttons": buttons,
        "slots": slots,
        "problem": None,
    }


def _template_label(template: Template) -> str:
    return f"{template.name} ({template.language}, {(template.category or 'no category').lower()})"


def _finished_imports(session) -> list[ImportJob]:
    return list(
        session.scalars(
            select(ImportJob)
            .where(
                ImportJob.kind == "contacts",
                ImportJob.state == "done",
                ImportJob.created + ImportJob.updated > 0,  # an import that brought nobody is no audience
            )
            .order_by(ImportJob.id.desc())
            .limit(50)
        )
    )


def _form_page(
    typed: dict[str, Any], errors: dict[str, str], broadcast_id: int | None = None, status: int = 200
) -> tuple[str, int]:
    session = db_session()
    approved = message_templates.approved(session)
    contact_ids = [number for number in (_int(part) for part in str(typed.get("contact_ids", "")).split(",")) if number]
    return (
        render_template(
            "broadcasts/form.html",
            typed=typed,
            errors=errors,
            broadcast_id=broadcast_id,
            templates=[_template_view(template) for template in approved],
            segments=segments.list_segments(session),
            imports=_finished_imports(session),
            contact_count=len(contact_ids),
            custom_keys=[definition.key for definition in custom_fields.definitions(session)],
            max_rate=audience.setting(session, "whatsapp.throughput"),
            zone=business_zone(session).key,
        ),
        status,
    )


def _new_typed(contact_ids: list[int] | None = None) -> dict[str, Any]:
    session = db_session()
    typed: dict[str, Any] = {
        "rate_per_second": str(audience.setting(session, "broadcasts.default_rate")),
        "when": "now",
        "audience": "contacts" if contact_ids else "segment",
    }
    if contact_ids:
        typed["contact_ids"] = ",".join(str(number) for number in contact_ids)
    segment = _int(request.args.get("segment"))
    if segment:
        typed["segment_id"] = str(segment)
    return typed


def _typed_from(data: services.BroadcastData) -> dict[str, Any]:
    """The stored broadcast as the form shows it (the edit page)."""
    session = db_session()
    template = session.scalar(
        select(Template).where(Template.name == data.template.name, Template.language == data.template.language)
    )
    typed: dict[str, Any] = {"name": data.name, "rate_per_second": str(data.rate_per_second)}
    if template is not None:
        typed["template"] = str(template.id)
        for component, values in data.variables.items():
            for placeholder, expression in values.items():
                typed[f"t{template.id}.{component}.{placeholder}"] = expression
    chosen = data.audience
    if chosen.get("segment_id") is not None:
        typed.update(audience="segment", segment_id=str(chosen["segment_id"]))
    elif chosen.get("import_id") is not None:
        typed.update(audience="import", import_id=str(chosen["import_id"]))
    else:
        typed.update(audience="contacts", contact_ids=",".join(str(n) for n in chosen.get("contact_ids") or []))
    if data.scheduled_at is not None:
        local = as_utc(data.scheduled_at).astimezone(business_zone(session))
        typed.update(when="later", scheduled_at=local.strftime("%Y-%m-%dT%H:%M"))
    else:
        typed["when"] = "now"
    return typed


def _typed() -> dict[str, Any]:
    return {key: value for key, value in request.form.items() if key != "csrf_token"}


def _form_key(field: str | None, template_id: int | None) -> str:
    """Where on the form an error from the commands (which name fields as the API does) belongs."""
    if not field:
        return "form"
    if field.startswith("template.variables.") and template_id is not None:
        return f"t{template_id}.{field.removeprefix('template.variables.')}"
    for prefix in ("template", "audience"):
        if field == prefix or field.startswith(prefix + "."):
            return prefix
    return field if field in ("name", "rate_per_second", "scheduled_at") else "form"


def _read_form() -> tuple[BroadcastIn, int]:
    """The form as a BroadcastIn (the API's own declaration); a UserError names the form's field at fault."""
    session = db_session()
    form = request.form
    template_id = _int(form.get("template"))
    template = session.get(Template, template_id) if template_id else None
    if template is None:
        raise UserError("Choose an approved template", field="template")
    prefix = f"t{template.id}."
    chosen: dict[str, dict[str, str]] = {}
    for key, value in form.items():
        if key.startswith(prefix) and value.strip():
            component, _, placeholder = key.removeprefix(prefix).partition(".")
            chosen.setdefault(component, {})[placeholder] = value.strip()
    kind = form.get("audience", "")
    if kind == "segment":
        segment_id = _int(form.get("segment_id"))
        if segment_id is None:
            raise UserError("Choose a segment", field="audience")
        who: dict[str, Any] = {"segment_id": segment_id}
    elif kind == "contacts":
        ids = [number for number in (_int(part) for part in form.get("contact_ids", "").split(",")) if number]
        if not ids:
            raise UserError("Choose contacts on the Contacts page first (the Broadcast bulk action)", field="audience")
        who = {"contact_ids": ids}
    elif kind == "import":
        import_id = _int(form.get("import_id"))
        if import_id is None:
            raise UserError("Choose a finished contacts import", field="audience")
        who = {"import_id": import_id}
    else:
        raise UserError("Choose who gets the broadcast", field="audience")
    rate_text = form.get("rate_per_second", "").strip()
    rate = _int(rate_text)
    if rate_text and rate is None:
        raise UserError("The pace is a whole number of messages per second, such as 20", field="rate_per_second")
    scheduled = None
    if form.get("when") == "later":
        scheduled = form.get("scheduled_at", "").strip()
        if not scheduled:
            raise UserError("Choose the date and time to send, or send now", field="scheduled_at")
    payload = {
        "name": form.get("name", "").strip(),
        "template": {"name": template.name, "language": template.language, "variables": chosen},
        "audience": who,
        "rate_per_second": rate,
        "scheduled_at": scheduled,
    }
    try:
        return BroadcastIn.model_validate(payload), template.id
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        words = {"name": "The name", "rate_per_second": "The pace", "scheduled_at": "The time to send"}
        top = str(first["loc"][0]) if first["loc"] else ""
        raise UserError(f"{words.get(top, where)} {message}", field=where) from None


def _save(broadcast_id: int | None):
    template_id = _int(request.form.get("template"))
    try:
        data, template_id = _read_form()
        with writing() as session:
            if broadcast_id is None:
                saved = commands.create(session, acting(), data)
            else:
                saved = commands.update(session, acting(), broadcast_id, data)
            saved_id = saved.id
    except UserError as refused:
        if refused.status == 404 and refused.field == "broadcast_id":
            raise
        errors = {_form_key(refused.field, template_id): refused.message}
        return _form_page(_typed(), errors, broadcast_id, refused.status)
    flash("Saved the broadcast. Check who gets it, then start it." if broadcast_id is None else "Saved the changes.")
    return redirect(url_for("broadcasts.view", broadcast_id=saved_id))


@bp.get("/new")
@requires(PERMISSION)
def new():
    return _form_page(_new_typed(), {})


@bp.post("/new/from-contacts")
@requires(PERMISSION)
def from_contacts():
    """The Contacts page's "Broadcast" bulk action: the form, with the chosen contacts as the audience."""
    ids = [number for number in (_int(value) for value in request.form.getlist("ids")) if number]
    errors = {}
    if request.form.get("all") == "1":
        errors["audience"] = (
            "A broadcast to everyone matching a filter goes to a segment: save the filter as a segment on the "
            "Contacts page, then choose it here."
        )
    elif not ids:
        errors["audience"] = "No contacts were chosen on the Contacts page."
    return _form_page(_new_typed(ids), errors)


@bp.post("/")
@requires(PERMISSION)
def create():
    return _save(None)


@bp.get("/<int:broadcast_id>/edit")
@requires(PERMISSION)
def edit(broadcast_id: int):
    data = services.get(db_session(), broadcast_id)
    if data.status not in ("draft", "scheduled"):
        flash(f"The broadcast is {data.status}; only a draft or a scheduled one can be edited.", "error")
        return redirect(url_for("broadcasts.view", broadcast_id=broadcast_id))
    return _form_page(_typed_from(data), {}, broadcast_id)


@bp.post("/<int:broadcast_id>/edit")
@requires(PERMISSION)
def update(broadcast_id: int):
    return _save(broadcast_id)


# --- one broadcast: the draft page or the campaign page -------------------------------------------------


def _preview_choices(session, broadcast: Broadcast, now: datetime) -> list[dict[str, Any]]:
    """The first contacts of the audience, to pick one and read what they would get; one who would be skipped
    says so (and why) in the list, judged by the rule the start applies."""
    ids: list[int] = []
    try:
        for contact_id in audience.contact_ids(session, audience.audience_of(broadcast)):
            ids.append(contact_id)
            if len(ids) >= PREVIEW_CHOICES:
                break
    except UserError:
        return []
    rows = session.execute(
        select(Contact.id, Contact.display_name, Contact.profile_name, Contact.wa_id, Contact.user_id).where(
            Contact.id.in_(ids)
        )
    ).all()
    names = {row.id: contact_name(*row) for row in rows}
    skipped = {
        verdict.contact_id: verdict.reason or "no reason given"
        for verdict in audience.judged(session, broadcast, [number for number in ids if number in names], now)
        if verdict.state == "skipped"
    }
    return [
        {
            "id": number,
            "name": names[number],
            "skipped": skipped.get(number),
            "label": f"{names[number]} (skipped: {skipped[number]})" if number in skipped else names[number],
        }
        for number in ids
        if number in names
    ]


def _used_in_window(session, now: datetime) -> int:
    """Customers the number already messaged first in the moving 24 hours, counted as the engine counts
    them for the messaging limit (test sends and the inbox's templates included)."""
    window = limits.MessagingWindow()
    window.refresh(session, now)
    return window.used(now)


def _draft_page(broadcast: Broadcast, errors: dict[str, str] | None = None, status: int = 200):
    session = db_session()
    now = utcnow()
    data = services.get(session, broadcast.id)
    try:
        summary: audience.Summary | None = audience.summary(session, broadcast, now)
        summary_error = None
    except UserError as exc:
        summary, summary_error = None, exc.message
    choices = _preview_choices(session, broadcast, now)
    wanted = _int(request.values.get("contact_id")) or (choices[0]["id"] if choices else None)
    preview = services.preview(session, broadcast, wanted) if wanted else None
    template = session.get(Template, broadcast.template_id) if broadcast.template_id else None
    return (
        render_template(
            "broadcasts/draft.html",
            broadcast=data,
            summary=summary,
            summary_error=summary_error,
            used_now=_used_in_window(session, now)
            if summary is not None and summary.limit_used_share is not None
            else 0,
            choices=choices,
            chosen=wanted,
            preview=preview,
            template=_template_view(template) if template is not None else None,
            future=broadcast.scheduled_at is not None and as_utc(broadcast.scheduled_at) > now,
            errors=errors or {},
            typed=_typed() if errors else {},
            zone=business_zone(session).key,
        ),
        status,
    )


def _banner(data: services.BroadcastData) -> str | None:
    if data.status != "paused":
        return None
    reason = (data.pause_reason or "Paused.").rstrip(".") + "."
    if data.pause_kind == "limit":
        zone = business_zone(db_session())
        when = f" It goes on by itself at {format_moment(data.resume_at, zone, 'datetime')}." if data.resume_at else ""
        return f"{reason}{when}"
    return f"{reason} {PAUSE_ADVICE.get(data.pause_kind or 'person', PAUSE_ADVICE['person'])}"


def _campaign_page(broadcast: Broadcast):
    session = db_session()
    data = services.get(session, broadcast.id)
    state = request.args.get("state", "")
    state = state if state in RECIPIENT_STATES else None
    cursor = request.args.get("cursor", "")[:200] or None
    try:
        recipients = services.recipients_page(session, broadcast.id, state, cursor, RECIPIENTS_PAGE)
    except UserError:
        return redirect(url_for("broadcasts.view", broadcast_id=broadcast.id, state=state))
    replies = [row.reply_message_id for row in recipients.items if row.reply_message_id]
    conversations = (
        dict(session.execute(select(Message.id, Message.conversation_id).where(Message.id.in_(replies))).all())
        if replies
        else {}
    )
    return render_template(
        "broadcasts/campaign.html",
        broadcast=data,
        banner=_banner(data),
        done=_done(data.counts),
        recipients=recipients.items,
        next_cursor=recipients.next_cursor,
        state=state or "",
        states=RECIPIENT_STATES,
        words=STATE_WORDS,
        conversations=conversations,
        failures=services.failure_groups(session, broadcast.id),
        final=data.status in FINAL_STATUSES,
    )


@bp.get("/<int:broadcast_id>")
@requires(PERMISSION)
def view(broadcast_id: int):
    broadcast = commands.get(db_session(), broadcast_id)
    if broadcast.status in ("draft", "scheduled"):
        return _draft_page(broadcast)
    return _campaign_page(broadcast)


@bp.get("/<broadcast_id>/preview")
@requires(PERMISSION)
@ui_call("broadcastPreview", (200, PreviewData), path=BroadcastPath, query=PreviewQuery, errors=(404,))
def preview(broadcast_id: int):
    session = db_session()
    broadcast = commands.get(session, broadcast_id)
    contact_id = given(PreviewQuery).contact_id
    found = services.preview(session, broadcast, contact_id)
    return jsonify(PreviewData(contact_id=contact_id, text=found.text, reason=found.reason).model_dump())


def _series(session, data: services.BroadcastData) -> ProgressSeries:
    if data.started_at is None:
        return ProgressSeries(at=[], **{name: [] for name in services.PROGRESS_SERIES})
    end = as_utc(data.finished_at) if data.finished_at else utcnow()
    elapsed = max(1.0, (end - as_utc(data.started_at)).total_seconds())
    points = services.progress(session, data.id, max(1, math.ceil(elapsed / CHART_POINTS)))
    return ProgressSeries(
        at=[int(as_utc(point["at"]).timestamp()) for point in points],
        **{name: [int(point[name]) for point in points] for name in services.PROGRESS_SERIES},
    )


@bp.get("/<broadcast_id>/progress")
@requires(PERMISSION)
@ui_call("broadcastProgress", (200, ProgressData), path=BroadcastPath, errors=(404,))
def progress(broadcast_id: int):
    session = db_session()
    data = services.get(session, broadcast_id)
    answer = ProgressData(
        status=data.status,
        final=data.status in FINAL_STATUSES,
        pause_kind=data.pause_kind,
        banner=_banner(data),
        recipient_count=data.recipient_count,
        done=_done(data.counts),
        counts=data.counts,
        series=_series(session, data),
        failures=[
            FailureGroup(code=code, reason=reason or "No reason given", count=count)
            for code, reason, count in services.failure_groups(session, data.id)
        ],
    )
    response = jsonify(answer.model_dump())
    response.headers["Cache-Control"] = "no-store"
    return response


CSV_COLUMNS = (
    "contact_id",
    "name",
    "wa_id",
    "state",
    "reason",
    "error_code",
    "sent_at",
    "delivered_at",
    "read_at",
    "replied_at",
)


def _moment(value: datetime | None) -> str:
    return as_utc(value).isoformat() if value else ""


def _csv_chunks(make_session: Callable[[], Session], broadcast_id: int, state: str | None) -> Iterator[bytes]:
    """The recipients as CSV (UTF-8 with the BOM Excel needs), a keyset page at a time, in a session of its own:
    the request's is closed before a streamed body is sent, and 100,000 rows never sit in memory at once."""
    session = make_session()
    try:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
        cursor = None
        while True:
            buffer.seek(0)
            buffer.truncate()
            found = services.recipients_page(session, broadcast_id, state, cursor, CSV_BATCH)
            for row in found.items:
                writer.writerow(
                    safe_cell(cell)
                    for cell in (
                        row.contact_id,
                        row.contact_name,
                        row.wa_id or "",
                        row.state,
                        row.reason or "",
                        row.error_code if row.error_code is not None else "",
                        _moment(row.sent_at),
                        _moment(row.delivered_at),
                        _moment(row.read_at),
                        _moment(row.replied_at),
                    )
                )
            yield buffer.getvalue().encode("utf-8")
            cursor = found.next_cursor
            if not cursor:
                return
    finally:
        session.close()


@bp.get("/<int:broadcast_id>/recipients.csv")
@requires(PERMISSION)
def recipients_csv(broadcast_id: int):
    """Every recipient with their outcome; names and reasons that a spreadsheet would run as formulas are
    escaped the way every SigDesk export escapes them."""
    data = services.get(db_session(), broadcast_id)
    state = request.args.get("state", "")
    state = state if state in RECIPIENT_STATES else None
    name = f"broadcast-{data.id}-recipients{'-' + state if state else ''}.csv"
    return Response(
        _csv_chunks(current_app.extensions["sigdesk"].database.sessionmaker, data.id, state),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


# --- the buttons ----------------------------------------------------------------------------------------

ACTIONS = {
    "start": (commands.start, None),
    "pause": (commands.pause, "Paused the broadcast. Nothing more is sent until you resume it."),
    "resume": (commands.resume, "Resumed the broadcast."),
    "cancel": (commands.cancel, "Cancelled the broadcast. Nobody else will get it."),
}


@bp.post("/<int:broadcast_id>/start", defaults={"action": "start"})
@bp.post("/<int:broadcast_id>/pause", defaults={"action": "pause"})
@bp.post("/<int:broadcast_id>/resume", defaults={"action": "resume"})
@bp.post("/<int:broadcast_id>/cancel", defaults={"action": "cancel"})
@requires(PERMISSION)
def act(broadcast_id: int, action: str):
    command, done = ACTIONS[action]
    try:
        with writing() as session:
            broadcast = command(session, acting(), broadcast_id)
            status, when = broadcast.status, broadcast.scheduled_at
    except UserError as refused:
        if refused.status == 404:
            raise
        flash(refused.message, "error")
        return redirect(url_for("broadcasts.view", broadcast_id=broadcast_id))
    if action == "start":
        zone = business_zone(db_session())
        done = (
            f"Scheduled: the broadcast starts at {format_moment(when, zone)} ({zone.key})."
            if status == "scheduled"
            else "Started the broadcast."
        )
    flash(done)
    return redirect(url_for("broadcasts.view", broadcast_id=broadcast_id))


@bp.post("/<int:broadcast_id>/delete")
@requires(PERMISSION)
def delete(broadcast_id: int):
    try:
        with writing() as session:
            commands.delete(session, acting(), broadcast_id)
    except UserError as refused:
        if refused.status == 404:
            raise
        flash(refused.message, "error")
        return redirect(url_for("broadcasts.view", broadcast_id=broadcast_id))
    flash("Deleted the draft.")
    return redirect(url_for("broadcasts.index"))


@bp.post("/<int:broadcast_id>/test")
@requires(PERMISSION)
def test_send(broadcast_id: int):
    """One message to a typed number, filled as for the contact picked in the preview."""
    broadcast = commands.get(db_session(), broadcast_id)
    phone = request.form.get("phone", "")
    contact_id = _int(request.form.get("contact_id"))
    try:
        with writing() as session:
            commands.test_send(session, acting(), broadcast_id, phone, contact_id)
    except UserError as refused:
        if refused.status == 404 and refused.field == "broadcast_id":
            raise
        field = "phone" if refused.field in (None, "phone") else "contact_id"
        broadcast = commands.get(db_session(), broadcast_id)
        return _draft_page(broadcast, {field: refused.message}, refused.status)
    flash(f"Test message queued to {phone.strip()}; it shows in that contact's conversation in the inbox.")
    return redirect(url_for("broadcasts.view", broadcast_id=broadcast.id, contact_id=contact_id))


# --- Settings → Broadcasts ------------------------------------------------------------------------------


@settings_bp.route("", methods=["GET", "POST"], endpoint="index")
@settings_bp.route("/", methods=["GET", "POST"], endpoint="index")
@requires("settings.manage")
def settings_page():
    """The messaging limit and throughput Meta gives the number, and how broadcasts use them."""
    errors: dict[str, str] = {}
    session = db_session()
    if request.method == "POST":
        values = settings_commands.from_form(SETTING_KEYS, request.form)
        rate, limit = _int(values.get("broadcasts.default_rate")), _int(values.get("whatsapp.throughput"))
        try:
            if rate is not None and limit is not None and rate > limit:
                raise settings_commands.SettingsRejected(
                    {"broadcasts.default_rate": f"The pace of new broadcasts must not exceed the throughput ({limit})"}
                )
            with writing() as writer:
                changed = settings_commands.save(writer, acting(), cipher(), values)
        except settings_commands.SettingsRejected as rejected:
            errors = rejected.errors
        else:
            flash("Settings saved." if changed else "Nothing changed.", "success" if changed else "info")
            return redirect(url_for("broadcast_settings.index"))
    values = {
        key: request.form.get(key, "") if errors else settings.get(session, cipher(), key) for key in SETTING_KEYS
    }
    page = render_template(
        "broadcasts/settings.html",
        specs=SPECS,
        values=values,
        errors=errors,
        tiers=MESSAGING_TIERS,
        consent_rules=UTILITY_CONSENT,
    )
    return page, (400 if errors else 200)
