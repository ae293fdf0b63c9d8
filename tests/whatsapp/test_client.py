import hashlib
import re
import socket

import httpx
import pytest

from sigdesk.whatsapp.client import (
    GraphClient,
    InvalidMedia,
    InvalidMessage,
    validate_message,
)
from sigdesk.whatsapp.errors import HUMAN, GraphError, explain
from tests.fakes.graph import (
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    TOKEN,
    VERIFIED_NAME,
    WABA_ID,
)

CUSTOMER = "15550001111"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
# Every code meta-cloud-api.md lists as worth a human explanation.
DOCUMENTED_CODES = [
    131047,
    130429,
    131056,
    131026,
    131048,
    131049,
    131050,
    131051,
    131053,
    131000,
    190,
    4,
    80007,
    132000,
    132001,
    132005,
    132007,
    132012,
    132015,
    132016,
]


def graph(fake_graph, token=TOKEN, **kwargs):
    return GraphClient(fake_graph.url, "v21.0", token, PHONE_NUMBER_ID, WABA_ID, **kwargs)


@pytest.fixture
def client(fake_graph):
    with graph(fake_graph) as client:
        yield client


def last_sent(fake_graph):
    body = fake_graph.sent[-1]
    assert body["messaging_product"] == "whatsapp" and body["recipient_type"] == "individual" and body["to"] == CUSTOMER
    return body


def test_a_text_reaches_meta_in_the_documented_shape(client, fake_graph):
    wamid = client.send_text(CUSTOMER, "Your cake is ready", preview_url=True)
    assert re.fullmatch(r"wamid\.FAKE\d+", wamid)
    request = fake_graph.requests[-1]
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert last_sent(fake_graph)["text"] == {"body": "Your cake is ready", "preview_url": True}


def test_replies_carry_their_context(client, fake_graph):
    client.send_text(CUSTOMER, "Yes!", reply_to="wamid.ORIGINAL")
    assert last_sent(fake_graph)["context"] == {"message_id": "wamid.ORIGINAL"}


def test_media_is_sent_by_id_or_by_link(client, fake_graph):
    client.send_media(CUSTOMER, "image", media_id="4490709327384033", caption="Our new cake")
    assert last_sent(fake_graph)["image"] == {"id": "4490709327384033", "caption": "Our new cake"}
    client.send_media(CUSTOMER, "document", link="https://example.com/invoice.pdf", filename="invoice.pdf")
    assert last_sent(fake_graph)["document"] == {"link": "https://example.com/invoice.pdf", "filename": "invoice.pdf"}
    client.send_media(CUSTOMER, "audio", media_id="1", reply_to="wamid.Q")
    assert last_sent(fake_graph)["audio"] == {"id": "1"} and last_sent(fake_graph)["context"] == {
        "message_id": "wamid.Q"
    }


def test_a_template_names_its_language_and_parameters(client, fake_graph):
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Rosa"}]}]
    client.send_template(CUSTOMER, "order_ready", "en_US", components)
    assert last_sent(fake_graph)["template"] == {
        "name": "order_ready",
        "language": {"code": "en_US"},
        "components": components,
    }


def test_reply_buttons_with_header_and_footer(client, fake_graph):
    client.send_interactive_buttons(
        CUSTOMER,
        "Pick up or delivery?",
        [("pickup", "Pick up"), ("deliver", "Delivery")],
        header="Your order",
        footer="Rosa's Bakery",
    )
    assert last_sent(fake_graph)["interactive"] == {
        "type": "button",
        "header": {"type": "text", "text": "Your order"},
        "body": {"text": "Pick up or delivery?"},
        "footer": {"text": "Rosa's Bakery"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "pickup", "title": "Pick up"}},
                {"type": "reply", "reply": {"id": "deliver", "title": "Delivery"}},
            ]
        },
    }


def test_a_list_accepts_rows_as_objects_or_tuples(client, fake_graph):
    client.send_interactive_list(
        CUSTOMER,
        "Choose a cake",
        "Cakes",
        [
            {"title": "Cakes", "rows": [("c1", "Chocolate", "Dark, 70%"), {"id": "c2", "title": "Lemon"}]},
            {"title": "Tarts", "rows": [("t1", "Apple")]},
        ],
    )
    action = last_sent(fake_graph)["interactive"]["action"]
    assert action["button"] == "Cakes"
    assert action["sections"][0]["rows"] == [
        {"id": "c1", "title": "Chocolate", "description": "Dark, 70%"},
        {"id": "c2", "title": "Lemon"},
    ]
    assert action["sections"][1] == {"title": "Tarts", "rows": [{"id": "t1", "title": "Apple"}]}


def test_reactions_locations_and_contact_cards(client, fake_graph):
    client.send_reaction(CUSTOMER, "wamid.IN1", "👍")
    assert last_sent(fake_graph)["reaction"] == {"message_id": "wamid.IN1", "emoji": "👍"}
    client.send_reaction(CUSTOMER, "wamid.IN1", "")
    assert last_sent(fake_graph)["reaction"]["emoji"] == ""
    client.send_location(CUSTOMER, 52.52, 13.405, "Rosa's Bakery", "Main St 1")
    assert last_sent(fake_graph)["location"] == {
        "latitude": 52.52,
        "longitude": 13.405,
        "name": "Rosa's Bakery",
        "address": "Main St 1",
    }
    cards = [
        {
            "name": {"formatted_name": "Rosa Baker", "first_name": "Rosa"},
            "phones": [{"phone": "+15550001111", "type": "WORK"}],
        }
    ]
    client.send_contacts(CUSTOMER, cards)
    assert last_sent(fake_graph)["contacts"] == cards


EVERY_TYPE = [
    ("text", {"body": "Hello *there*", "preview_url": True}),
    ("image", {"id": "12345", "caption": "Our new cake"}),
    ("video", {"link": "https://example.com/v.mp4"}),
    ("sticker", {"id": "12345"}),
    (
        "interactive",
        {
            "type": "button",
            "body": {"text": "Pick up?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]},
        },
    ),
    ("reaction", {"message_id": "wamid.X", "emoji": "👍"}),
    ("template", {"name": "order_ready", "language": {"code": "en_US"}}),
]


@pytest.mark.parametrize(("kind", "content"), EVERY_TYPE, ids=[kind for kind, _ in EVERY_TYPE])
def test_prepared_payloads_are_sent_as_they_are(client, fake_graph, kind, content):
    payload = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": kind,
        kind: content,
        "biz_opaque_callback_data": "ref-1",
    }
    assert client.send_payload(payload).startswith("wamid.")
    assert fake_graph.sent[-1] == payload


def test_mark_read(client, fake_graph):
    client.mark_read("wamid.IN1")
    assert fake_graph.requests[-1].body == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN1",
    }


@pytest.mark.parametrize(
    ("send", "message"),
    [
        (lambda c: c.send_text(CUSTOMER, "x" * 4097), "at most 4096"),
        (lambda c: c.send_text(CUSTOMER, "   "), "needs some text"),
        (lambda c: c.send_text("", "hi"), "recipient"),
        (lambda c: c.send_media(CUSTOMER, "image"), "exactly one"),
        (lambda c: c.send_media(CUSTOMER, "image", media_id="1", link="https://x.example/a.png"), "exactly one"),
        (lambda c: c.send_media(CUSTOMER, "image", link="file:///etc/passwd"), "http"),
        (lambda c: c.send_media(CUSTOMER, "audio", media_id="1", caption="no"), "Captions"),
        (lambda c: c.send_media(CUSTOMER, "image", media_id="1", filename="a.png"), "Only documents"),
        (lambda c: c.send_media(CUSTOMER, "hologram", media_id="1"), "not 'hologram'"),
        (lambda c: c.send_interactive_buttons(CUSTOMER, "b", [(str(i), f"t{i}") for i in range(4)]), "1 to 3"),
        (lambda c: c.send_interactive_buttons(CUSTOMER, "b", [("1", "x" * 21)]), "1 to 20"),
        (lambda c: c.send_interactive_buttons(CUSTOMER, "b", [("1", "Same"), ("2", "Same")]), "own id and title"),
        (lambda c: c.send_interactive_buttons(CUSTOMER, "b" * 1025, [("1", "ok")]), "at most 1024"),
        (lambda c: c.send_interactive_buttons(CUSTOMER, "b", [("1", "ok")], footer="f" * 61), "at most 60"),
        (
            lambda c: c.send_interactive_list(CUSTOMER, "b", "Open", [{"rows": [(str(i), "r") for i in range(11)]}]),
            "1 to 10 rows",
        ),
        (lambda c: c.send_interactive_list(CUSTOMER, "b", "Open", [{"rows": [("1", "x" * 25)]}]), "at most 24"),
        (
            lambda c: c.send_interactive_list(CUSTOMER, "b", "Open", [{"rows": [("1", "a")]}, {"rows": [("2", "b")]}]),
            "needs a title",
        ),
        (lambda c: c.send_interactive_list(CUSTOMER, "b", "x" * 21, [{"rows": [("1", "a")]}]), "at most 20"),
        (lambda c: c.send_location(CUSTOMER, 91, 0), "latitude"),
        (lambda c: c.send_location(CUSTOMER, 0, float("nan")), "longitude"),
        (lambda c: c.send_contacts(CUSTOMER, [{"phones": [{"phone": "1"}]}]), "formatted_name"),
        (lambda c: c.send_template(CUSTOMER, "", "en_US"), "template's name"),
        (
            lambda c: c.send_payload({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "carrier_pigeon"}),
            "Unknown message type",
        ),
    ],
)
def test_rule_breaking_messages_are_refused_before_calling_meta(client, fake_graph, send, message):
    with pytest.raises(InvalidMessage, match=message) as caught:
        send(client)
    assert isinstance(caught.value, ValueError)
    assert fake_graph.requests == []


def test_validation_matches_what_outbound_queues():
    validate_message("contacts", [{"name": {"formatted_name": "Rosa"}}])
    with pytest.raises(InvalidMessage, match="Interactive messages are of type"):
        validate_message("interactive", {"type": "carousel", "body": {"text": "b"}})


@pytest.mark.parametrize(
    ("data", "mime", "message"),
    [
        (PNG + b"\x00" * (5 * 1024 * 1024), "image/png", "at most 5,242,880 bytes for images"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * (100 * 1024), "image/webp", "at most 102,400 bytes for stickers"),
        (b"", "image/png", "empty"),
        (PNG, "", "MIME type"),
    ],
)
def test_uploads_over_whatsapps_limits_are_refused_locally(client, fake_graph, data, mime, message):
    with pytest.raises(InvalidMedia, match=message):
        client.upload_media(data, mime, "file")
    assert fake_graph.requests == []


def test_media_round_trip(client, fake_graph):
    media_id = client.upload_media(PNG, "image/png", "cake.png")
    upload = fake_graph.requests[-1]
    assert upload.body["messaging_product"] == "whatsapp" and upload.body["type"] == "image/png"
    assert upload.body["file"] == {"filename": "cake.png", "content_type": "image/png"}
    info = client.media_info(media_id)
    assert (
        info["sha256"] == hashlib.sha256(PNG).hexdigest()
        and info["mime_type"] == "image/png"
        and info["file_size"] == len(PNG)
    )
    assert client.download_media(info["url"], max_bytes=1024) == PNG
    assert fake_graph.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_media_downloads_are_capped(client, fake_graph):
    media_id = fake_graph.add_media(b"x" * 5000, "image/jpeg")
    with pytest.raises(GraphError, match="larger than 1000 bytes") as caught:
        client.download_media(client.media_info(media_id)["url"], max_bytes=1000)
    assert caught.value.code == 131053 and not caught.value.retryable


def test_media_downloads_have_an_overall_deadline(client, fake_graph):
    media_id = fake_graph.add_media(b"x" * 5000, "image/jpeg")
    with pytest.raises(GraphError, match="longer than 0 s") as caught:
        client.download_media(client.media_info(media_id)["url"], max_bytes=10_000, deadline=0)
    assert caught.value.retryable


def test_the_token_never_goes_to_a_plain_http_address_when_meta_is_https():
    with (
        GraphClient("https://graph.example.invalid", "v21.0", TOKEN, PHONE_NUMBER_ID) as client,
        pytest.raises(GraphError, match="non-https"),
    ):
        client.download_media("http://127.0.0.1:9/steal", max_bytes=10)


def test_a_missing_media_file_is_a_graph_error(client, fake_graph):
    with pytest.raises(GraphError) as caught:
        client.media_info("404404")
    assert caught.value.code == 100 and caught.value.status == 400


def test_phone_number_info(client, fake_graph):
    info = client.phone_number_info()
    assert info["display_phone_number"] == DISPLAY_NUMBER and info["verified_name"] == VERIFIED_NAME
    assert (
        fake_graph.requests[-1].query["fields"]
        == "id,display_phone_number,verified_name,quality_rating,messaging_limit_tier"
    )


def test_templates_are_listed_across_pages(client, fake_graph):
    fake_graph.templates = [
        {"name": f"t{i}", "language": "en_US", "status": "APPROVED", "category": "UTILITY"} for i in range(5)
    ]
    assert [t["name"] for t in client.list_templates()] == ["t0", "t1", "t2", "t3", "t4"]
    assert sum(r.path.endswith("/message_templates") for r in fake_graph.requests) == 3


def test_templates_need_the_business_account_id(fake_graph):
    with (
        GraphClient(fake_graph.url, "v21.0", TOKEN, PHONE_NUMBER_ID) as client,
        pytest.raises(GraphError, match="Business Account ID"),
    ):
        client.list_templates()


def test_an_expired_token_is_explained_in_words(client, fake_graph):
    fake_graph.expire_token()
    with pytest.raises(GraphError) as caught:
        client.phone_number_info()
    error = caught.value
    assert (error.status, error.code, error.subcode) == (401, 190, 463)
    assert "access token has expired" in error.human and "Settings → Connection" in error.human
    assert not error.retryable


def test_meta_error_envelopes_are_read_by_code_and_details(client, fake_graph):
    fake_graph.fail_for(CUSTOMER, 131047)
    with pytest.raises(GraphError) as caught:
        client.send_text(CUSTOMER, "Still there?")
    error = caught.value
    assert (error.status, error.code, error.fbtrace_id) == (400, 131047, "AbCdEf123")
    assert "24 hours have passed" in error.details
    assert "only approved templates" in error.human and not error.retryable
    assert client.send_template(CUSTOMER, "order_ready", "en_US").startswith("wamid.")
    client.send_text("15550002222", "Another customer is fine")


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        (130429, 400, True),
        (131056, 400, True),
        (4, 400, True),
        (80007, 400, True),
        (131000, 500, True),
        (2, 503, True),
        (131047, 400, False),
        (131026, 400, False),
        (131050, 400, False),
        (132001, 404, False),
        (190, 401, False),
        (100, 400, False),
        (131053, 400, False),
        (987654, 500, True),
        (987654, 400, False),
    ],
)
def test_errors_know_whether_a_retry_can_help(client, fake_graph, code, status, retryable):
    fake_graph.fail_next(code, status)
    with pytest.raises(GraphError) as caught:
        client.send_text(CUSTOMER, "hi")
    assert caught.value.code == code and caught.value.retryable is retryable
    assert f"code {code}" in caught.value.human or f"HTTP {status}" in caught.value.human


def test_scripted_failures_run_out(client, fake_graph):
    fake_graph.fail_next(130429, count=2)
    for _ in range(2):
        with pytest.raises(GraphError):
            client.send_text(CUSTOMER, "hi")
    assert client.send_text(CUSTOMER, "hi").startswith("wamid.")


@pytest.mark.parametrize("code", DOCUMENTED_CODES)
def test_every_documented_code_has_plain_words(code):
    text = explain(code)
    assert code in HUMAN and f"code {code}" in text and "refused the request" not in text


def test_every_code_the_shared_notes_list_is_explained(shared_dir):
    notes = (shared_dir / "meta-cloud-api.md").read_text()
    section = notes.split("Error codes worth mapping", 1)[1].split("\n## ", 1)[0]
    codes = {int(c) for c in re.findall(r"\b(\d{1,6})\b", section) if c not in ("1320",)}
    assert codes - set(HUMAN) == set()


def test_unknown_errors_fall_back_to_metas_words():
    error = GraphError.from_response(
        400, {"error": {"message": "(#12345) Something odd", "code": 12345, "error_data": '{"details": "odd detail"}'}}
    )
    assert error.details == "odd detail"
    assert "Something odd" in error.human and "odd detail" in error.human and not error.retryable


def test_server_errors_without_a_body_are_retryable():
    assert GraphError.from_response(502, None).retryable
    assert GraphError.from_response(429, "Too Many Requests").retryable
    assert not GraphError.from_response(400, {"error": {"message": "bad", "code": 100}}).retryable


def test_a_slow_server_gives_a_clear_retryable_error(fake_graph):
    fake_graph.delay = 1.0
    with graph(fake_graph, timeout=httpx.Timeout(0.2)) as client, pytest.raises(GraphError) as caught:
        client.phone_number_info()
    assert caught.value.transport and caught.value.retryable
    assert "no answer within 0.2 s" in caught.value.human


def test_an_unreachable_server_is_a_retryable_transport_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        GraphClient(f"http://127.0.0.1:{port}", "v21.0", TOKEN, PHONE_NUMBER_ID, timeout=2) as client,
        pytest.raises(GraphError) as caught,
    ):
        client.send_text(CUSTOMER, "hi")
    assert caught.value.transport and caught.value.retryable and "could not reach" in caught.value.human


def test_an_unreachable_server_is_explained_in_words_with_what_to_check_and_no_retry_promise():
    """A person who pressed a button is told what happened and what to do; no exception name, and no
    "will try again" unless a background retry is really scheduled (human_retrying)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        GraphClient(f"http://127.0.0.1:{port}", "v21.0", TOKEN, PHONE_NUMBER_ID, timeout=2) as client,
        pytest.raises(GraphError) as caught,
    ):
        client.phone_number_info()
    human = caught.value.human
    assert human == (
        "SigDesk could not reach WhatsApp's servers: no connection could be made. Check this computer's internet "
        "connection (and the proxy, if your network uses one), then try again."
    )
    assert "Error" not in human and "will try again" not in human
    assert caught.value.human_retrying.endswith("SigDesk will try again shortly.")


def test_temporary_meta_errors_promise_a_retry_only_while_one_is_scheduled():
    error = GraphError.from_response(503, {"error": {"message": "busy", "code": 2}})
    assert error.human.endswith("(code 2). Try again in a few minutes.") and "will try again" not in error.human
    assert error.human_retrying.endswith("(code 2). SigDesk will try again shortly.")
    assert "will try again" not in explain(131000)


def test_proxy_settings_from_the_environment_are_honoured(fake_graph, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fake_graph.url)
    with GraphClient("http://graph.example.invalid", "v21.0", TOKEN, PHONE_NUMBER_ID) as client:
        assert client.phone_number_info()["verified_name"] == VERIFIED_NAME


@pytest.mark.parametrize(
    ("base_url", "version", "message"),
    [
        ("https://graph.facebook.com", "21", "not a Graph API version"),
        ("ftp://graph.facebook.com", "v21.0", "not an http"),
    ],
)
def test_bad_connection_settings_are_refused_at_once(base_url, version, message):
    with pytest.raises(ValueError, match=message):
        GraphClient(base_url, version, TOKEN, PHONE_NUMBER_ID)


def test_calls_without_a_deadline_are_refused(fake_graph):
    with pytest.raises(ValueError, match="timeouts"):
        graph(fake_graph, timeout=None)


def test_a_non_json_answer_is_an_error(fake_graph):
    fake_graph.templates = []

    @fake_graph.app.get("/v21.0/html")
    def html():
        return "<html>captive portal</html>"

    with graph(fake_graph) as client, pytest.raises(GraphError, match="without a JSON object"):
        client.request("GET", "html")


def test_the_default_version_is_the_current_one_meta_documents():
    from sigdesk.settings.specs import SPECS
    from sigdesk.whatsapp.client import DEFAULT_VERSION

    assert DEFAULT_VERSION == "v26.0" == SPECS["whatsapp.api_version"].default


def test_a_token_is_described_and_its_accounts_and_numbers_listed(fake_graph):
    with GraphClient(fake_graph.url, "v26.0", TOKEN) as client:
        data = client.debug_token()
        assert data["is_valid"] is True and data["expires_at"] == 0
        assert {grant["scope"] for grant in data["granular_scopes"]} == {
            "whatsapp_business_messaging",
            "whatsapp_business_management",
        }
        assert client.business_account(WABA_ID)["name"]
        [number] = client.phone_numbers(WABA_ID)
    assert number["id"] == PHONE_NUMBER_ID and number["messaging_limit_tier"] == "TIER_1K"
    request = fake_graph.requests[0]
    assert request.path == "/v26.0/debug_token" and request.query["input_token"] == TOKEN


def test_ids_that_are_not_metas_never_reach_a_request_path(fake_graph):
    with GraphClient(fake_graph.url, "v26.0", TOKEN) as client, pytest.raises(InvalidMessage, match="numeric ID"):
        client.phone_numbers("../me")
    assert fake_graph.requests == []


def test_subscribing_sends_the_callback_override_and_meta_checks_it(fake_graph, app, live_server):
    from sigdesk.settings import services as settings

    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "whatsapp.verify_token", "the-verify-token")
    fake_graph.tunnel("https://desk.example.com", live_server.url)
    with GraphClient(fake_graph.url, "v26.0", TOKEN) as client:
        client.subscribe_app(WABA_ID, "https://desk.example.com/webhooks/whatsapp", "the-verify-token")
        [entry] = client.subscribed_apps(WABA_ID)
        assert entry["override_callback_uri"] == "https://desk.example.com/webhooks/whatsapp"
        with pytest.raises(GraphError) as refused:
            client.subscribe_app(WABA_ID, "https://desk.example.com/webhooks/whatsapp", "a-wrong-token")
    assert refused.value.code == 2200
    body = fake_graph.requests[0].body
    assert body == {
        "override_callback_uri": "https://desk.example.com/webhooks/whatsapp",
        "verify_token": "the-verify-token",
    }


def test_metas_deprecation_header_is_remembered(fake_graph):
    fake_graph.deprecate("v21.0", "v26.0")
    with GraphClient(fake_graph.url, "v21.0", TOKEN, PHONE_NUMBER_ID) as client:
        client.phone_number_info()
        assert client.served_version == "v26.0"
        assert client.version_warning == "The call has been auto-upgraded to v26.0 as v21.0 has been deprecated."
    with GraphClient(fake_graph.url, "v26.0", TOKEN, PHONE_NUMBER_ID) as client:
        client.phone_number_info()
        assert client.served_version == "v26.0" and client.version_warning is None


def test_a_deprecation_is_noted_even_when_the_call_fails(fake_graph):
    fake_graph.deprecate("v21.0")
    fake_graph.fail_next(100)
    with GraphClient(fake_graph.url, "v21.0", TOKEN, PHONE_NUMBER_ID) as client, pytest.raises(GraphError):
        client.phone_number_info()
    assert client.version_warning and "deprecated" in client.version_warning


def test_sending_without_a_phone_number_id_is_refused_locally(fake_graph):
    with GraphClient(fake_graph.url, "v26.0", TOKEN) as client, pytest.raises(InvalidMessage, match="phone number ID"):
        client.send_text(CUSTOMER, "hello")
    assert fake_graph.requests == []


def test_the_token_in_debug_tokens_query_never_reaches_the_log(fake_graph, caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="httpx"), GraphClient(fake_graph.url, "v26.0", TOKEN) as client:
        client.debug_token()
    ours = [record.getMessage() for record in caplog.records if record.name != "werkzeug"]  # werkzeug: the fake's
    assert any("debug_token" in line for line in ours) and not any(TOKEN in line for line in ours)


def test_a_fork_sends_as_its_parent_on_a_connection_of_its_own_and_closes_with_it(fake_graph):
    """A broadcast's sending threads each use a fork: sharing one pool cost more CPU than the calls."""
    parent = graph(fake_graph, timeout=7.0)
    child = parent.fork()
    assert re.fullmatch(r"wamid\.FAKE\d+", child.send_text(CUSTOMER, "Fresh bread at 7"))
    request = fake_graph.requests[-1]
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert child._http.timeout == parent._http.timeout and child._http is not parent._http
    parent.close()
    assert child._http.is_closed
