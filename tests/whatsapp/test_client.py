import hashlib

import httpx
import pytest

from sigdesk.whatsapp.client import GraphClient, InvalidMessage, validate_message
from sigdesk.whatsapp.errors import GraphError, explain
from tests.fakes.graph import DISPLAY_NUMBER, PHONE_NUMBER_ID, TOKEN, VERIFIED_NAME, WABA_ID


@pytest.fixture
def client(fake_graph):
    with GraphClient(TOKEN, PHONE_NUMBER_ID, WABA_ID, base_url=fake_graph.url, api_version="v21.0") as graph:
        yield graph


def payload(kind, content, to="15550001111"):
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": kind, kind: content}


EVERY_TYPE = [
    ("text", {"body": "Hello *there*", "preview_url": True}),
    ("image", {"id": "12345", "caption": "Our new cake"}),
    ("video", {"link": "https://example.com/v.mp4"}),
    ("audio", {"id": "12345"}),
    ("document", {"id": "12345", "filename": "invoice.pdf", "caption": "Invoice"}),
    ("sticker", {"id": "12345"}),
    ("interactive", {"type": "button", "body": {"text": "Pick up or delivery?"},
                     "action": {"buttons": [{"type": "reply", "reply": {"id": "pickup", "title": "Pick up"}},
                                            {"type": "reply", "reply": {"id": "deliver", "title": "Delivery"}}]}}),
    ("interactive", {"type": "list", "body": {"text": "Choose a cake"},
                     "action": {"button": "Cakes", "sections": [{"title": "Cakes", "rows": [{"id": "c1", "title": "Chocolate"}]}]}}),
    ("reaction", {"message_id": "wamid.X", "emoji": "👍"}),
    ("location", {"latitude": 52.52, "longitude": 13.40, "name": "Shop", "address": "Main St 1"}),
    ("template", {"name": "order_ready", "language": {"code": "en_US"},
                  "components": [{"type": "body", "parameters": [{"type": "text", "text": "Rosa"}]}]}),
]


@pytest.mark.parametrize(("kind", "content"), EVERY_TYPE, ids=[f"{kind}-{i}" for i, (kind, _) in enumerate(EVERY_TYPE)])
def test_every_message_type_reaches_the_graph_api(client, fake_graph, kind, content):
    wamid = client.send_payload(payload(kind, content))
    assert wamid.startswith("wamid.")
    sent = fake_graph.sent[-1]
    assert sent["type"] == kind and sent[kind] == content
    assert fake_graph.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_contacts_cards_are_sent_as_a_list(client, fake_graph):
    cards = [{"name": {"formatted_name": "Rosa", "first_name": "Rosa"}, "phones": [{"phone": "+15550001111"}]}]
    client.send_payload({"messaging_product": "whatsapp", "to": "15550001111", "type": "contacts", "contacts": cards})
    assert fake_graph.sent[-1]["contacts"] == cards


def test_replies_carry_their_context(client, fake_graph):
    body = payload("text", {"body": "Yes!"})
    body["context"] = {"message_id": "wamid.ORIGINAL"}
    client.send_payload(body)
    assert fake_graph.sent[-1]["context"] == {"message_id": "wamid.ORIGINAL"}


@pytest.mark.parametrize(
    ("kind", "content", "message"),
    [
        ("text", {"body": "x" * 4097}, "at most 4096"),
        ("text", {"body": "  "}, "needs some text"),
        ("image", {}, "exactly one"),
        ("audio", {"id": "1", "caption": "no"}, "Captions"),
        ("interactive", {"type": "button", "body": {"text": "b"}, "action": {"buttons": [{"reply": {"id": str(i), "title": "t"}} for i in range(4)]}}, "1 to 3"),
        ("interactive", {"type": "button", "body": {"text": "b"}, "action": {"buttons": [{"reply": {"id": "1", "title": "x" * 21}}]}}, "1 to 20"),
        ("interactive", {"type": "list", "body": {"text": "b"}, "action": {"button": "B", "sections": [{"rows": [{"id": str(i), "title": "r"} for i in range(11)]}]}}, "1 to 10"),
        ("location", {"latitude": 91, "longitude": 0}, "latitude"),
        ("template", {"language": {"code": "en"}}, "name"),
        ("carrier_pigeon", {}, "Unknown message type"),
    ],
)
def test_rule_breaking_messages_are_refused_before_calling_meta(kind, content, message):
    with pytest.raises(InvalidMessage, match=message):
        validate_message(kind, content)


def test_expired_token_is_explained_in_words(fake_graph):
    with GraphClient("expired", PHONE_NUMBER_ID, base_url=fake_graph.url) as graph:
        with pytest.raises(GraphError) as caught:
            graph.phone_number_info()
    assert caught.value.code == 190
    assert "access token has expired" in caught.value.human
    assert not caught.value.retryable


@pytest.mark.parametrize(("code", "status", "retryable"), [(130429, 400, True), (131056, 400, True), (131047, 400, False),
                                                            (131026, 400, False), (132001, 404, False), (1, 500, True)])
def test_errors_know_whether_a_retry_can_help(client, fake_graph, code, status, retryable):
    fake_graph.fail_next(code, status)
    with pytest.raises(GraphError) as caught:
        client.send_payload(payload("text", {"body": "hi"}))
    assert caught.value.code == code and caught.value.retryable is retryable
    assert f"code {code}" in caught.value.human or caught.value.human


def test_window_closed_error_points_to_templates():
    assert "only approved templates" in explain(131047)


def test_server_errors_without_a_code_are_retryable():
    assert GraphError.from_response(502, None).retryable
    assert not GraphError.from_response(400, {"error": {"message": "bad", "code": 100}}).retryable


def test_a_dead_server_is_a_retryable_transport_error(fake_graph):
    fake_graph.delay = 1.0
    with GraphClient(TOKEN, PHONE_NUMBER_ID, base_url=fake_graph.url, timeout=httpx.Timeout(0.2)) as graph:
        with pytest.raises(GraphError) as caught:
            graph.phone_number_info()
    assert caught.value.transport and caught.value.retryable
    assert "timed out" in caught.value.human


def test_phone_number_info(client):
    info = client.phone_number_info()
    assert info["display_phone_number"] == DISPLAY_NUMBER and info["verified_name"] == VERIFIED_NAME


def test_mark_read(client, fake_graph):
    client.mark_read("wamid.IN1")
    assert fake_graph.requests[-1].body == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1"}


def test_media_round_trip(client, fake_graph):
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    media_id = client.upload_media(data, "image/png", "cake.png")
    info = client.media_info(media_id)
    assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["mime_type"] == "image/png"
    assert client.download_media(info["url"], max_bytes=1024) == data


def test_media_downloads_are_capped(client, fake_graph):
    media_id = fake_graph.add_media(b"x" * 5000, "image/jpeg")
    with pytest.raises(GraphError, match="larger than 1000 bytes"):
        client.download_media(client.media_info(media_id)["url"], max_bytes=1000)


def test_templates_are_listed_across_pages(client, fake_graph):
    fake_graph.templates = [{"name": f"t{i}", "language": "en_US", "status": "APPROVED", "category": "UTILITY"} for i in range(5)]
    assert [t["name"] for t in client.list_templates()] == ["t0", "t1", "t2", "t3", "t4"]
