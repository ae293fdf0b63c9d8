"""The media fetcher checks a customer's file against the SHA-256 WhatsApp announced, whatever its encoding.

Meta's webhooks give the digest in base64 (see ../shared/meta-webhooks/ and tests/fixtures/webhooks), its
media endpoint answers hex; both name the same 32 bytes. Each test delivers a signed webhook over HTTP to
the running server, whose worker fetches the file from the fake Graph API.
"""

import base64
import hashlib

import pytest

from sigdesk.media.services import MalformedDigest, digest_bytes
from tests.outbound.test_sending import first_conversation, inbound, post_webhook
from tests.waiting import wait_for

pytestmark = pytest.mark.database

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 300
OTHER = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x01" * 300


def b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def hexdigest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def photo_arrives(api, fake_graph, sha256: str) -> dict:
    """A customer's photo whose webhook announces `sha256`; the message once the worker has handled it."""
    media_id = fake_graph.add_media(PNG, "image/png")
    content = {"id": media_id, "mime_type": "image/png", "sha256": sha256, "caption": "the cake"}
    post_webhook(api.live_server.url, inbound("wamid.PHOTO", "image", content))
    conversation = first_conversation(api)

    def handled():
        items = api.get(f"/conversations/{conversation['id']}/messages").json()["items"]
        photo = next(item for item in items if item["wamid"] == "wamid.PHOTO")
        return photo if photo["media"]["state"] != "pending" else None

    return wait_for(handled)


@pytest.mark.parametrize("announced", [b64, hexdigest], ids=["base64-as-meta-sends-it", "hex"])
def test_a_photo_whose_webhook_announces_its_sha256_is_ready_in_either_encoding(api, fake_graph, client, announced):
    photo = photo_arrives(api, fake_graph, announced(PNG))
    assert photo["media"]["state"] == "ready", photo
    response = client.get(photo["media"]["url"])
    assert response.status_code == 200 and response.data == PNG


@pytest.mark.parametrize("announced", [b64, hexdigest], ids=["base64", "hex"])
def test_a_photo_that_does_not_match_the_announced_sha256_is_quarantined(api, fake_graph, announced):
    photo = photo_arrives(api, fake_graph, announced(OTHER))
    assert photo["media"]["state"] == "quarantined"
    assert photo["error"]["explanation"] == "Quarantined: the file's SHA-256 does not match the one WhatsApp announced."


@pytest.mark.parametrize("announced", ["4654+8g=", "not a digest", "z" * 64, base64.b64encode(b"\x00" * 31).decode()])
def test_a_photo_whose_announced_sha256_is_malformed_is_quarantined(api, fake_graph, announced):
    photo = photo_arrives(api, fake_graph, announced)
    assert photo["media"]["state"] == "quarantined"
    assert "not a valid one" in photo["error"]["explanation"]


def test_both_encodings_name_the_same_bytes():
    digest = hashlib.sha256(PNG).digest()
    assert digest_bytes(b64(PNG)) == digest_bytes(hexdigest(PNG)) == digest_bytes(hexdigest(PNG).upper()) == digest
    assert digest_bytes(base64.urlsafe_b64encode(digest).decode().rstrip("=")) == digest
    assert digest_bytes(None) is None and digest_bytes("") is None
    with pytest.raises(MalformedDigest):
        digest_bytes("q1w2e3r4t5y6u7i8o9p0==")
