"""Graph API errors in words a shop owner understands, and whether trying again can help.

Meta asks integrators to decide by `code` and `error_data.details`; titles are being retired, so
nothing here looks at them except to show them when no better words exist.
"""

from __future__ import annotations

import json
from typing import Any

SETTINGS = "Settings → Connection"
# Only where a background retry is really scheduled (see GraphError.human_retrying); a person who just
# clicked a button is told what to do instead.
RETRY = "SigDesk will try again shortly."
LATER = "Try again in a few minutes."
OFFLINE = "Check this computer's internet connection (and the proxy, if your network uses one), then try again."

# Temporary by Meta's own description: throughput, pair rate, API rate limits, outages.
RETRYABLE_CODES = frozenset({1, 2, 4, 17, 32, 613, 80007, 130429, 131000, 131016, 131056, 133004})

HUMAN: dict[int, str] = {
    190: f"The access token has expired or is no longer valid (code 190). Create a new token in Meta's dashboard "
    f"(a permanent system-user token is best) and save it in {SETTINGS}.",
    0: f"Meta could not authenticate SigDesk (code 0). Check the access token in {SETTINGS}.",
    10: "The access token lacks a permission (code 10): give it whatsapp_business_messaging and "
    "whatsapp_business_management.",
    200: "The access token lacks a permission for this (code 200): give it whatsapp_business_messaging and "
    "whatsapp_business_management.",
    3: "This Meta app is not allowed to use that part of the API (code 3). Check the app's WhatsApp product setup.",
    1: f"Meta's API had an unknown problem (code 1). {RETRY}",
    2: f"Meta's API is temporarily unavailable or overloaded (code 2). {RETRY}",
    4: f"Too many calls to Meta's API from this app (code 4). {RETRY}",
    17: f"Too many calls to Meta's API from this user (code 17). {RETRY}",
    32: f"Too many calls to Meta's API for this account (code 32). {RETRY}",
    613: f"Too many calls to Meta's API in the last hour (code 613). {RETRY}",
    80007: f"The WhatsApp Business Account reached its API rate limit (code 80007). {RETRY}",
    100: f"Meta refused a parameter (code 100): check the phone number ID and WhatsApp Business Account ID in "
    f"{SETTINGS}, and the message's content.",
    368: "The WhatsApp Business Account is temporarily blocked for policy violations (code 368). "
    "See Account Quality in WhatsApp Manager.",
    130429: f"WhatsApp's sending rate for this number was reached (code 130429). {RETRY}",
    130472: "WhatsApp held this marketing message back because the customer's number is part of a Meta experiment "
    "(code 130472).",
    130497: "This business account may not message customers in that country (code 130497).",
    131000: f"WhatsApp had an unexpected problem (code 131000). {RETRY}",
    131005: "Meta denied access (code 131005): the access token lacks permission for this phone number.",
    131008: "A required part of the message is missing (code 131008).",
    131009: "A value in the message is not valid (code 131009); for example, the phone number or media ID.",
    131016: f"WhatsApp's service is temporarily unavailable (code 131016). {RETRY}",
    131021: "A message cannot be sent to the business's own number (code 131021).",
    131026: "The message could not be delivered (code 131026): the number may not be on WhatsApp, the customer may "
    "not have accepted WhatsApp's latest terms, or their app is too old.",
    131031: "The WhatsApp Business Account is locked (code 131031). See Account Quality in WhatsApp Manager.",
    131042: "There is a payment problem on the WhatsApp Business Account (code 131042). Check the payment method "
    "in Meta's Business Settings.",
    131045: "The phone number is not registered with the Cloud API (code 131045). Register it in WhatsApp Manager.",
    131047: "More than 24 hours have passed since the customer last wrote (code 131047): the 24-hour window is "
    "closed, so only approved templates can be sent until the customer writes again.",
    131048: "WhatsApp limited this number because too many customers blocked or reported it (code 131048). "
    "Slow down and check the number's quality in WhatsApp Manager.",
    131049: "WhatsApp did not deliver this marketing message to protect the customer's experience (code 131049). "
    "Wait before sending this customer another marketing message.",
    131050: "The customer has stopped marketing messages from this business (code 131050). Do not send them "
    "marketing templates.",
    131051: "WhatsApp does not support this message type (code 131051).",
    131052: "WhatsApp could not download the customer's media file (code 131052). Ask the customer to send it again.",
    131053: "WhatsApp could not process the media file (code 131053): check its type and size against WhatsApp's "
    "limits.",
    131056: f"Too many messages to this customer in a short time (code 131056). {RETRY}",
    131057: "The WhatsApp Business Account is in maintenance mode (code 131057). Try again later.",
    132000: "The number of template variables does not match the template (code 132000).",
    132001: "That template does not exist in this language, or is not approved yet (code 132001).",
    132005: "The template's text is too long once the variables are filled in (code 132005).",
    132007: "The template's content breaks WhatsApp's policy (code 132007).",
    132012: "A template variable has the wrong format (code 132012).",
    132015: "The template is paused because of low quality (code 132015). Edit it or choose another.",
    132016: "The template is disabled because of low quality (code 132016). Create a new one.",
    133004: f"WhatsApp's server is temporarily unavailable (code 133004). {RETRY}",
    133010: "The phone number is not registered on WhatsApp Business (code 133010). Register it in WhatsApp Manager.",
}


class GraphError(Exception):
    """A failed Graph API call, with Meta's code kept so callers decide by code, not by title."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: int | None = None,
        subcode: int | None = None,
        title: str | None = None,
        details: str | None = None,
        fbtrace_id: str | None = None,
        transport: bool = False,
        refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.subcode = subcode
        self.title = title
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.transport = transport
        self.refused = refused

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed later without anyone changing anything."""
        if self.refused:
            return False
        if self.transport or self.code in RETRYABLE_CODES:
            return True
        if self.code is not None and self.code in HUMAN:
            return False
        return self.status is not None and (self.status >= 500 or self.status == 429)

    @property
    def human(self) -> str:
        """What happened and what to do, for a person waiting on the answer or a send that has given up."""
        if self.transport and not self.refused:
            return f"SigDesk could not reach WhatsApp's servers: {self.args[0]}. {OFFLINE}"
        return self._words().replace(RETRY, LATER)

    @property
    def human_retrying(self) -> str:
        """The same words while a background retry is scheduled, so nobody repeats by hand what SigDesk will do."""
        if self.transport and not self.refused:
            return f"SigDesk could not reach WhatsApp's servers: {self.args[0]}. {RETRY}"
        return self._words()

    def _words(self) -> str:
        if self.refused:
            return f"{self.args[0]} Change the Graph API address in {SETTINGS}."
        if self.code in HUMAN:
            text = HUMAN[self.code]
        elif self.status == 401:
            text = HUMAN[190].replace("(code 190)", f"(HTTP 401{f', code {self.code}' if self.code else ''})")
        elif self.status is not None and self.status >= 500:
            text = f"WhatsApp's servers had a problem (HTTP {self.status}). {RETRY}"
        else:
            text = f"WhatsApp refused the request: {self.title or self.args[0]}" + (
                f" (code {self.code})" if self.code else ""
            )
        if self.details and self.details not in text:
            text += f" Meta says: {_cut(self.details, 300)}"
        return text

    @classmethod
    def from_response(cls, status: int, body: Any) -> GraphError:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(f"HTTP {status} from the Graph API", status=status)
        message = str(error.get("message") or f"HTTP {status}")
        return cls(
            message,
            status=status,
            code=_int(error.get("code")),
            subcode=_int(error.get("error_subcode")),
            title=error.get("error_user_title") or message,
            details=_details(error.get("error_data")),
            fbtrace_id=error.get("fbtrace_id"),
        )


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _details(data: Any) -> str | None:
    """error_data is an object in WhatsApp errors but a JSON string in some older Graph errors."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return data or None
    if isinstance(data, dict) and data.get("details") is not None:
        return str(data["details"])
    return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def explain(code: int | None, title: str | None = None, details: str | None = None) -> str:
    """Words for an error code that came in a status webhook rather than an API response."""
    return GraphError(title or "error", code=code, title=title, details=details).human
