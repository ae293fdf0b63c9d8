"""Pointers such as "Settings → Connection" in pages, messages and the README name a real menu entry."""

from __future__ import annotations

import re
from pathlib import Path

from sigdesk import navigation

ROOT = Path(__file__).resolve().parents[1]
# "Meta Business Settings → System users" is Meta's menu, not ours; "{" is filled in from PLACES (tested below).
POINTER = re.compile(r"Settings\s*(?:→|&rarr;|->|-&gt;)\s*(?![\s{])([^\n<`*]{0,40})")


def _metas(text: str, start: int) -> bool:
    """Meta's own "Business Settings", also when a Python string is split between the two words."""
    return re.sub(r"[\"'\s]", "", text[max(0, start - 30) : start]).endswith("Business")


def _sources() -> list[Path]:
    return [
        *sorted((ROOT / "ui" / "templates").rglob("*.html")),
        *sorted((ROOT / "sigdesk").rglob("*.py")),
        ROOT / "README.md",
        ROOT / "packaging" / "relay" / "README.md",
    ]


def test_every_settings_pointer_names_a_registered_settings_page(app):
    """With the app made, so that the features have registered their pages."""
    labels = {entry.label for entry in navigation._settings.values()}
    wrong = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        for match in POINTER.finditer(text):
            if _metas(text, match.start()):
                continue
            if not any(re.match(rf"{re.escape(label)}\b", match.group(1)) for label in labels):
                wrong.append(f"{path.relative_to(ROOT)}: Settings → {match.group(1)}")
    assert wrong == []


def test_the_pointers_are_found_at_all():
    text = (ROOT / "ui" / "templates" / "relay" / "index.html").read_text(encoding="utf-8")
    assert [m.group(1)[:10] for m in POINTER.finditer(text)], "the pattern no longer finds the pointers"


def test_the_wizard_names_the_menu_entries_where_its_steps_live():
    from sigdesk.onboarding.views import PLACES

    labels = {entry.label for entry in navigation._settings.values()}
    assert set(PLACES.values()) <= labels
