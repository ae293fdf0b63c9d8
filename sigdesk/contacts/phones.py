"""Phone numbers as people type them, made into the form Meta uses: E.164 digits without '+' (a wa_id).

`phonenumbers` (Google's libphonenumber) knows each country's numbering plan, so "0170 1234567" with
Germany as the default country and "+49 170 1234567" are the same customer, and a number with a digit
missing is refused before it can become a contact nobody can write to.
"""

from __future__ import annotations

import re

import phonenumbers

from sigdesk.errors import UserError

MAX_TYPED = 64  # longer than any number written with spaces, dashes and an extension
_SEPARATORS = re.compile(r"[\s().\-/]+")


def normalise(typed: str, default_country: str | None = None, field: str = "phone") -> str:
    """The wa_id of a number typed in any common format, or a UserError naming `field`.

    Accepted: "+49 170 1234567", "0049 170 1234567", "(202) 555-0123" or "0170 1234567" when the default
    country says where, and bare international digits as Meta writes them ("491701234567").
    """
    text = typed.strip() if isinstance(typed, str) else ""
    if not text:
        raise UserError("Give a phone number", field=field)
    if len(text) > MAX_TYPED:
        raise UserError(f"A phone number is at most {MAX_TYPED} characters", field=field)
    compact = _SEPARATORS.sub("", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    candidates: list[tuple[str, str | None]] = []
    if compact.startswith("+"):
        candidates.append((compact, None))
    else:
        international = compact.isdigit() and not compact.startswith("0")
        # Bare digits that start with the default country's own code are read as Meta writes them first:
        # "491701234567" typed in Germany is +49 170..., though German numbering would allow 0491701234567.
        code = _calling_code(default_country) if default_country else ""
        if international and code and compact.startswith(code):
            candidates.append(("+" + compact, None))
        if default_country:
            candidates.append((compact, default_country))
        if international:
            candidates.append(("+" + compact, None))
    for number_text, region in candidates:
        try:
            number = phonenumbers.parse(number_text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).removeprefix("+")
    if not candidates:
        raise UserError(
            "Write the number with its country code (+49 ...), or set the default country "
            "(contacts.default_country) for numbers written without one",
            field=field,
        )
    raise UserError("This is not a valid phone number; check the country code and the digits", field=field)


def pretty(wa_id: str | None) -> str | None:
    """A wa_id as people read it ("+49 170 1234567"), or as stored when it cannot be read as a number."""
    if not wa_id:
        return wa_id
    try:
        number = phonenumbers.parse("+" + wa_id, None)
    except phonenumbers.NumberParseException:
        return wa_id
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _calling_code(country: str) -> str:
    """ "49" for DE; "" for a code phonenumbers does not know."""
    return str(phonenumbers.country_code_for_region(country.upper()) or "")
