"""Counts in words, so pages and messages say "1 message" and "3 messages", never "message(s)"."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """`number` with `noun`, in the plural unless it is one (`plural` for irregular ones: "entry", "entries")."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"
