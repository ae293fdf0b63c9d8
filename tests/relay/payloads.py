"""Meta-shaped deliveries for relay tests: unique wamids, escaped unicode (as Meta sends), signed."""

from __future__ import annotations

import json

from sigdesk.whatsapp.webhook import signature_header

SECRET = "relay-test-app-secret"


def delivery(serial: int, tag: str = "t") -> bytes:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "900800700600500",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "100200300400500"},
                            "contacts": [
                                {
                                    "profile": {"name": f"Customer {serial % 50} \u00e9\U0001f642"},
                                    "wa_id": f"1555{serial % 50:07d}",
                                }
                            ],
                            "messages": [
                                {
                                    "from": f"1555{serial % 50:07d}",
                                    "id": f"wamid.relay.{tag}.{serial}",
                                    "timestamp": str(1731700000 + serial),
                                    "type": "text",
                                    "text": {"body": f"Hello {serial} \U0001f642"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body).encode("ascii")  # ensure_ascii: \ud83d\ude42 escapes, like Meta's payloads


def wamid(serial: int, tag: str = "t") -> str:
    return f"wamid.relay.{tag}.{serial}"


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": signature_header(secret, body), "Content-Type": "application/json"}
