"""Meta's template placeholders, read in one place: what a form asks for, what a send carries, what the customer saw.

The syntax is Meta's (WhatsApp Cloud API, "Template components" and "Template fundamentals"; template review
rejects "variable parameters ... with mismatched curly braces: the correct format is {{1}}"):

- a placeholder is two opening braces, a token, two closing braces, with nothing else between them, so `{{ 1 }}`
  is not a placeholder Meta approves and is reported here as malformed rather than guessed at;
- the token is a number (parameter_format POSITIONAL, the default) or a name of lowercase letters, digits and
  underscores that does not start with a digit (parameter_format NAMED, e.g. `{{first_name}}`); one template uses one;
- positional numbers run 1..n without a gap, in any order in the text; a repeated placeholder is one variable;
- variables live in TEXT headers, the body, URL buttons (the URL's end) and copy-code buttons; media headers take a
  link to the image, video or document; footers take none.

Nothing here knows Flask or the database: it takes the template's components as Meta lists them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sigdesk.errors import Refused, UserError

TOKEN = re.compile(r"\{\{([^{}]*)\}\}")
NUMBER = re.compile(r"[1-9][0-9]{0,2}")
NAME = re.compile(r"[a-z_][a-z0-9_]{0,127}")
MEDIA = ("image", "video", "document")
MAX_TEXT = 1024


class TemplateMalformed(UserError):
    """A stored template whose placeholders Meta would not accept: it cannot be filled in or sent."""

    status = 422


@dataclass(frozen=True)
class Slot:
    """One value a send must carry: `key` is the number or name between the braces (or `link` for media)."""

    key: str
    kind: str = "text"


@dataclass(frozen=True)
class Part:
    """One component of a template; `name` is how forms and errors call it (header, body, footer, button_0)."""

    name: str
    text: str | None
    slots: tuple[Slot, ...] = ()
    sub_type: str | None = None
    index: int | None = None

    @property
    def label(self) -> str:
        return f"button {self.index + 1}" if self.index is not None else self.name


@dataclass(frozen=True)
class Layout:
    """A template's components with their variables; `named` is Meta's parameter_format NAMED."""

    parts: tuple[Part, ...]
    named: bool = False

    def variables(self) -> dict[str, int]:
        """How many values each component needs, for forms and the admin list."""
        return {part.name: len(part.slots) for part in self.parts if part.slots}

    def fields(self) -> dict[str, list[str]]:
        """The keys of each component's values, in the order a list of values fills them."""
        return {part.name: [slot.key for slot in part.slots] for part in self.parts if part.slots}


# --- parsing -------------------------------------------------------------------------------------


def parse(components: str | Sequence[Any] | None, parameter_format: str | None = None) -> Layout:
    """Read Meta's `components` (JSON text as stored, or the list) into a Layout, or raise TemplateMalformed.
    Stored text is parsed once per process: a broadcast reads the same template for every recipient, and a
    Layout is immutable."""
    if isinstance(components, str):
        return _parse_text(components, parameter_format)
    return _parse(components, parameter_format)


@functools.lru_cache(maxsize=256)
def _parse_text(components: str, parameter_format: str | None) -> Layout:
    return _parse(components, parameter_format)


def _parse(components: str | Sequence[Any] | None, parameter_format: str | None) -> Layout:
    items = _items(components)
    found: list[Part] = []
    for item in items:
        kind = str(item.get("type", "")).lower()
        if kind == "buttons":
            found.extend(_buttons(item.get("buttons")))
        elif kind in ("header", "body", "footer"):
            found.append(_text_part(kind, item))
    tokens = [slot.key for part in found if part.index is None for slot in part.slots if slot.kind == "text"]
    named = _format(tokens, parameter_format)
    parts = tuple(_ordered(part) for part in found)
    for part in parts:
        _check_sequence(part)
    return Layout(parts, named)


def _items(components: str | Sequence[Any] | None) -> list[dict[str, Any]]:
    value: Any = components
    if isinstance(components, (str, bytes)):
        try:
            value = json.loads(components or "[]")
        except ValueError:
            raise TemplateMalformed(
                "The template's components are not valid JSON; sync templates from Meta again", field="components"
            ) from None
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise TemplateMalformed(
            "The template's components must be a list of objects; sync templates from Meta again", field="components"
        )
    return value


def _text_part(kind: str, item: dict[str, Any]) -> Part:
    text = item.get("text")
    if text is not None and not isinstance(text, str):
        raise TemplateMalformed(f"The template's {kind} text is not text", field=kind)
    fmt = str(item.get("format") or "TEXT").lower()
    if kind == "header" and fmt != "text":
        return Part(kind, None, (Slot("link" if fmt in MEDIA else fmt, fmt),))
    keys = _tokens(text or "", kind, kind)
    if kind == "footer" and keys:
        raise TemplateMalformed("The template's footer has a variable; Meta allows none there", field=kind)
    return Part(kind, text, tuple(Slot(key) for key in keys))


def _buttons(buttons: Any) -> list[Part]:
    if buttons is None:
        return []
    if not isinstance(buttons, list) or not all(isinstance(button, dict) for button in buttons):
        raise TemplateMalformed("The template's buttons must be a list of objects", field="buttons")
    return [part for index, button in enumerate(buttons) if (part := _button(index, button)) is not None]


def _button(index: int, button: dict[str, Any]) -> Part | None:
    kind = str(button.get("type", "")).lower()
    name = f"button_{index}"
    if kind == "url":
        url = button.get("url")
        if not isinstance(url, str):
            raise TemplateMalformed(f"The template's button {index + 1} has no URL", field=name)
        keys = _tokens(url, f"button {index + 1}", name)
        if len(keys) > 1 or (keys and not url.endswith("}}")):
            raise TemplateMalformed(f"The template's button {index + 1} URL may only end in one variable", field=name)
        return Part(name, url, tuple(Slot(key) for key in keys), "url", index)
    if kind == "copy_code":
        return Part(name, None, (Slot("coupon_code", "coupon_code"),), "copy_code", index)
    if kind == "otp":
        return Part(name, None, (Slot("1", "code"),), "url", index)
    return None


def _tokens(text: str, where: str, field: str) -> list[str]:
    """The distinct tokens in first-appearance order; anything brace-like that is not one is malformed."""
    keys: list[str] = []
    for match in TOKEN.finditer(text):
        token = match.group(1)
        stray = text[match.start() - 1 : match.start()] == "{" or text[match.end() : match.end() + 1] == "}"
        if stray or not (NUMBER.fullmatch(token) or NAME.fullmatch(token)):
            raise TemplateMalformed(
                f"The template's {where} has a malformed variable {match.group(0)!r}: Meta's format is {{{{1}}}} "
                "or {{first_name}}, without spaces",
                field=field,
            )
        if token not in keys:
            keys.append(token)
    leftover = TOKEN.sub("", text)
    if "{{" in leftover or "}}" in leftover:
        raise TemplateMalformed(f"The template's {where} has unmatched curly braces", field=field)
    return keys


def _format(tokens: list[str], declared: str | None) -> bool:
    numbers = {token for token in tokens if token.isdigit()}
    if numbers and len(numbers) != len(set(tokens)):
        raise TemplateMalformed("The template mixes numbered and named variables; Meta allows one kind per template")
    named = bool(tokens) and not numbers
    if declared and declared.upper() in ("NAMED", "POSITIONAL") and tokens and named != (declared.upper() == "NAMED"):
        raise TemplateMalformed(f"The template is declared {declared.upper()} but its variables are not")
    return named


def _ordered(part: Part) -> Part:
    """Positional values go in number order whatever order the text uses them in."""
    if part.text is None or not part.slots or not all(slot.key.isdigit() for slot in part.slots):
        return part
    slots = tuple(sorted(part.slots, key=lambda slot: int(slot.key) if slot.key.isdigit() else 0))
    return Part(part.name, part.text, slots, part.sub_type, part.index)


def _check_sequence(part: Part) -> None:
    if part.text is None or not part.slots or not all(slot.key.isdigit() for slot in part.slots):
        return
    numbers = [int(slot.key) for slot in part.slots]
    if numbers != list(range(1, len(numbers) + 1)):
        missing = min(set(range(1, max(numbers) + 1)) - set(numbers))
        raise TemplateMalformed(
            f"The template's {part.label} uses {{{{{max(numbers)}}}}} but has no {{{{{missing}}}}}; "
            "Meta numbers variables from 1 without gaps",
            field=part.name,
        )


# --- filling -------------------------------------------------------------------------------------

Values = Mapping[str, Sequence[Any] | Mapping[str, Any]]


def fill(layout: Layout, params: Values) -> list[dict[str, Any]]:
    """Meta's `components` for a send, from values given per component as a list (in order) or by key."""
    components = []
    for part in layout.parts:
        if not part.slots:
            continue
        values = _values(part, params.get(part.name))
        components.append(_component(part, layout.named, values))
    return components


def _values(part: Part, given: Sequence[Any] | Mapping[str, Any] | None) -> list[str]:
    if isinstance(given, Mapping):
        raw = [given.get(slot.key) for slot in part.slots]
    elif isinstance(given, Sequence) and not isinstance(given, (str, bytes)):
        raw = list(given[: len(part.slots)]) + [None] * (len(part.slots) - len(given))
    else:
        raw = [None] * len(part.slots)
    values = []
    for slot, value in zip(part.slots, raw):
        if not isinstance(value, str) or not value.strip():
            count = len(part.slots)
            raise UserError(
                f"Fill in all {count} variable{'s' if count != 1 else ''} of the template's {part.label}",
                field=f"params.{part.name}",
            )
        values.append(_clean(part, slot, value.strip()))
    return values


def _clean(part: Part, slot: Slot, value: str) -> str:
    field = f"params.{part.name}"
    if slot.kind in MEDIA and not value.lower().startswith(("https://", "http://")):
        raise UserError(f"The template's {part.label} needs a link to the {slot.kind} (https://...)", field=field)
    if slot.kind not in MEDIA and slot.kind not in ("text", "code", "coupon_code"):
        raise Refused(
            f"SigDesk cannot fill a {slot.kind} {part.label} yet; send this template from WhatsApp Manager", field=field
        )
    if len(value) > MAX_TEXT:
        raise UserError(f"A variable of the template's {part.label} is longer than {MAX_TEXT} characters", field=field)
    if slot.kind == "text" and ("\n" in value or "\t" in value or "     " in value):
        raise UserError(
            f"WhatsApp refuses variables with new lines, tabs or more than 4 spaces in a row (template's {part.label})",
            field=field,
        )
    return value


def _component(part: Part, named: bool, values: list[str]) -> dict[str, Any]:
    if part.index is not None:
        kind = part.slots[0].kind
        parameter = (
            {"type": "coupon_code", "coupon_code": values[0]}
            if kind == "coupon_code"
            else {"type": "text", "text": values[0]}
        )
        return {"type": "button", "sub_type": part.sub_type, "index": str(part.index), "parameters": [parameter]}
    if part.slots[0].kind in MEDIA:
        kind = part.slots[0].kind
        return {"type": part.name, "parameters": [{"type": kind, kind: {"link": values[0]}}]}
    parameters = []
    for slot, value in zip(part.slots, values):
        parameter = {"type": "text", "text": value}
        if named:
            parameter["parameter_name"] = slot.key
        parameters.append(parameter)
    return {"type": part.name, "parameters": parameters}


# --- checking and rendering what was sent --------------------------------------------------------


def check(layout: Layout, components: Iterable[Any] | None) -> None:
    """Refuse a send whose components leave a variable of the template empty (Meta would fail it later)."""
    sent = _sent(components)
    for part in layout.parts:
        if not part.slots:
            continue
        got = sent.get(part.name, {})
        if part.slots[0].kind == "text" and part.index is None:
            missing = [
                slot.key
                for position, slot in enumerate(part.slots, 1)
                if slot.key not in got and str(position) not in got
            ]
        else:
            missing = [] if got else [part.slots[0].key]
        if missing:
            count = len(part.slots)
            raise UserError(
                f"The template's {part.label} needs {count} value{'s' if count != 1 else ''}",
                field=f"components.{part.name}",
            )


def render(layout: Layout, components: Iterable[Any] | None) -> str | None:
    """The words the customer read: header, body and footer with the sent values in place of the placeholders."""
    sent = _sent(components)
    lines = []
    for part in layout.parts:
        if part.index is not None or part.text is None:
            continue
        values = sent.get(part.name, {})
        lines.append(TOKEN.sub(lambda match, values=values: values.get(match.group(1), match.group(0)), part.text))
    return "\n".join(line for line in lines if line) or None


def _sent(components: Iterable[Any] | None) -> dict[str, dict[str, str]]:
    """Sent values by component name, keyed both by position ("1", "2", ...) and by parameter_name."""
    sent: dict[str, dict[str, str]] = {}
    if not isinstance(components, list):
        return sent
    for component in components:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).lower()
        name = f"button_{component.get('index')}" if kind == "button" else kind
        values = sent.setdefault(name, {})
        parameters = component.get("parameters")
        for position, parameter in enumerate(parameters if isinstance(parameters, list) else [], 1):
            if not isinstance(parameter, dict):
                continue
            value = parameter.get("text", parameter.get("coupon_code", ""))
            text = value if isinstance(value, str) else ""
            values[str(position)] = text
            if isinstance(parameter.get("parameter_name"), str):
                values[parameter["parameter_name"]] = text
    return sent
