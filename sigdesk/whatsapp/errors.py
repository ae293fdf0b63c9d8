"""Graph API errors in words a shop owner understands, and whether trying again can help."""

from __future__ import annotations

from typing import Any

RETRYABLE_CODES = frozenset({4, 80007, 130429, 131056, 131000, 1, 2})
HUMAN: dict[int, str] = {
    190: "The access token has expired or was revoked (code 190). Create a new token in Meta's dashboard and save it in Settings → WhatsApp.",
    131047: "The 24-hour customer service window is closed (code 131047): only approved templates can be sent until the customer writes again.",
    130429: "WhatsApp's throughput limit was reached (code 130429); SigDesk will retry shortly.",
    131056: "Too many messages to this customer in a short time (code 131056); SigDesk will retry shortly.",
    131026: "The message could not be delivered (code 131026): the number may not be on WhatsApp, or the customer has not accepted the latest terms.",
    131048: "WhatsApp limited this number for spam (code 131048): too many customers blocked or reported it. Slow down and review your messages.",
    131049: "WhatsApp did not deliver this marketing message to protect the customer's experience (code 131049). Try again later.",
    131050: "The customer has stopped marketing messages from you (code 131050).",
    131051: "WhatsApp does not support this message type (code 131051).",
    131053: "WhatsApp could not process the media file (code 131053): check its type and size.",
    131000: "WhatsApp had an unexpected problem (code 131000); SigDesk will retry.",
    132000: "The number of template variables does not match the template (code 132000).",
    132001: "That template does not exist in this language, or is not approved yet (code 132001).",
    132005: "The template text is too long after filling in the variables (code 132005).",
    132007: "The template's content breaks WhatsApp's policy (code 132007).",
    132012: "A template variable has the wrong format (code 132012).",
    132015: "The template is paused because of low quality (code 132015).",
    132016: "The template is disabled because of low quality (code 132016).",
    4: "Too many calls to Meta's API (code 4); SigDesk will retry shortly.",
    80007: "The WhatsApp Business account hit its rate limit (code 80007); SigDesk will retry shortly.",
    100: "Meta refused a parameter (code 100): check the phone number ID, WABA ID and message content.",
    10: "The access token does not have permission for this (code 10): give it whatsapp_business_messaging and whatsapp_business_management.",
    200: "The access token does not have permission for this (code 200).",
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
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.subcode = subcode
        self.title = title
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.transport = transport

    @property
    def retryable(self) -> bool:
        if self.transport:
            return True
        if self.code in RETRYABLE_CODES:
            return True
        return self.code is None and self.status is not None and self.status >= 500

    @property
    def human(self) -> str:
        if self.transport:
            return f"Could not reach WhatsApp's servers ({self.args[0]}). SigDesk will retry."
        if self.code in HUMAN:
            text = HUMAN[self.code]
        elif self.status is not None and self.status >= 500:
            text = f"WhatsApp's servers had a problem (HTTP {self.status}); SigDesk will retry."
        else:
            text = f"WhatsApp refused the request: {self.title or self.args[0]}" + (f" (code {self.code})" if self.code else "")
        if self.details and self.code not in (190,):
            text += f" Details: {self.details}"
        return text

    @classmethod
    def from_response(cls, status: int, body: Any) -> "GraphError":
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(f"HTTP {status} from the Graph API", status=status)
        data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
        code = error.get("code")
        return cls(
            str(error.get("message") or f"HTTP {status}"),
            status=status,
            code=int(code) if isinstance(code, (int, str)) and str(code).isdigit() else None,
            subcode=error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None,
            title=error.get("error_user_title") or error.get("title") or error.get("message"),
            details=data.get("details"),
            fbtrace_id=error.get("fbtrace_id"),
        )


def explain(code: int | None, title: str | None = None) -> str:
    """Words for an error code that came in a status webhook rather than an API response."""
    return GraphError(title or "error", code=code, title=title).human
