"""Meta-shaped deliveries for relay tests: unique wamids, escaped unicode (as Meta sends), signed."""

from __future__ import annotations

import json

from sigdesk.whatsapp.webhook import signature_header
from tests import factories

SECRET = "relay-test-app-secret"


def delivery(serial: int, tag: str = "t") -> bytes:
    body = factories.text_message(
        f"1555{serial % 50:07d}",
        f"Hello {serial} \U0001f642",
        wamid=f"wamid.relay.{tag}.{serial}",
        at=1731700000 + serial,
        name=f"Customer {serial % 50} \u00e9\U0001f642",
        meta=factories.metadata("100200300400500", "15550001111"),
        waba_id="900800700600500",
    )
    return json.dumps(body).encode("ascii")  # ensure_ascii: \ud83d\ude42 escapes, like Meta's payloads


def wamid(serial: int, tag: str = "t") -> str:
    return f"wamid.relay.{tag}.{serial}"


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": signature_header(secret, body), "Content-Type": "application/json"}
