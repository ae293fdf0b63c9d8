"""The contact picker and search look for what was typed, literally: SQL's LIKE wildcards in it are plain
characters, escaped by one rule (SQLAlchemy's autoescape) rather than a copy in each feature."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigdesk.exports.services import pick_contacts
from tests import factories

SIGDESK = Path(__file__).resolve().parents[2] / "sigdesk"


@pytest.mark.database
def test_percent_underscore_and_backslash_are_typed_characters_not_wildcards(app):
    with app.extensions["sigdesk"].database.session() as session:
        for wa_id, name in (
            ("4911", "100% Cotton"),
            ("4912", "1000 Cotton"),
            ("4913", "snake_case"),
            ("4914", "snakeXcase"),
            ("4915", "back\\slash"),
            ("4916", "backslash"),
        ):
            factories.conversation(session, factories.contact(session, wa_id, name))
        session.flush()

        def names(typed: str) -> list[str]:
            return [contact.name for contact in pick_contacts(session, typed).items]

        assert names("100%") == ["100% Cotton"]
        assert names("e_c") == ["snake_case"]
        assert names("k\\s") == ["back\\slash"]
        assert sorted(names("COTTON")) == ["100% Cotton", "1000 Cotton"]


def test_no_feature_keeps_its_own_copy_of_the_like_escaping():
    copies = [
        str(path.relative_to(SIGDESK))
        for package in ("exports", "search")
        for path in sorted((SIGDESK / package).glob("*.py"))
        if 'replace("%"' in path.read_text() or "def _like" in path.read_text()
    ]
    assert copies == []
