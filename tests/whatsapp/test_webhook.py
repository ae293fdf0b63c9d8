import hashlib
import hmac
import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from sigdesk.whatsapp import types as wa
from sigdesk.whatsapp.webhook import MalformedDelivery, parse, signature_header, verify_challenge, verify_signature

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
SECRET = "app-secret-for-tests"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def only_message(name: str) -> wa.Message:
    delivery = parse(fixture(name))
    assert len(delivery.messages) == 1
    return delivery.messages[0]


# --- signature and handshake -------------------------------------------------------------------


def test_signature_matches_hmac_sha256_of_the_exact_bytes():
    body = fixture("message_text")
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert verify_signature(SECRET, body, f"sha256={digest}")
    assert signature_header(SECRET, body) == f"sha256={digest}"


def test_signature_over_reserialised_json_does_not_match():
    body = fixture("message_text")
    reserialised = json.dumps(json.loads(body)).encode()
    assert reserialised != body
    assert not verify_signature(SECRET, body, signature_header(SECRET, reserialised))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha256",
        "md5=abc",
        "sha1=" + "0" * 40,
        "sha256=" + "0" * 64,
        "sha256=" + "é" * 64,
        "sha256=zz" + "0" * 62,
        "garbage without equals sign",
    ],
)
def test_missing_or_malformed_signature_is_refused(header):
    assert not verify_signature(SECRET, b"{}", header)


def test_signature_tolerates_case_and_spaces_in_the_header():
    header = signature_header(SECRET, b"{}")
    assert verify_signature(SECRET, b"{}", " SHA256=" + header.split("=", 1)[1].upper() + " ")


def test_signature_is_refused_when_no_app_secret_is_set():
    assert not verify_signature(None, b"{}", signature_header("", b"{}"))
    assert not verify_signature("", b"{}", signature_header("", b"{}"))


def test_handshake_echoes_the_challenge_for_the_right_token():
    assert verify_challenge("subscribe", "tok", "1158201444", "tok") == "1158201444"


@pytest.mark.parametrize(
    "mode,token,expected",
    [
        ("subscribe", "wrong", "tok"),
        ("unsubscribe", "tok", "tok"),
        (None, "tok", "tok"),
        ("subscribe", None, "tok"),
        ("subscribe", "tok", None),
        ("subscribe", "", ""),
    ],
)
def test_handshake_refuses_anything_else(mode, token, expected):
    assert verify_challenge(mode, token, "123", expected) is None


# --- envelope ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe\x00", b"[1, 2]", b'"text"', b"42", b"null", b"{"])
def test_a_body_that_is_not_a_json_object_is_malformed(body):
    with pytest.raises(MalformedDelivery):
        parse(body)


def test_deeply_nested_json_is_malformed_not_a_crash():
    with pytest.raises(MalformedDelivery):
        parse(b"[" * 100000 + b"]" * 100000)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"object": "page"}',
        b'{"entry": 5}',
        b'{"entry": [1, "x", null]}',
        b'{"entry": [{"changes": [1, {"field": 3}, {"field": "messages", "value": []}]}]}',
        b'{"entry": [{"id": {"x": 1}, "time": "soon", "changes": [{"field": "messages", "value": {"messages": [{"id": 5}]}}]}]}',
    ],
)
def test_odd_but_json_objects_never_raise(body):
    delivery = parse(body)
    assert isinstance(delivery, wa.Delivery)


def test_unreadable_entries_and_changes_are_kept_as_other_events():
    delivery = parse(b'{"entry": [7, {"id": "1", "changes": ["x", {"field": "messages", "value": 3}]}]}')
    assert [other.event for other in delivery.others] == ["unreadable_entry", "unreadable_change", "unreadable_change"]
    assert delivery.others[0].raw == "7"


def test_several_entries_changes_and_messages_are_all_read():
    delivery = parse(fixture("batch_several_entries"))
    assert [m.wamid for m in delivery.messages] == ["wamid.FIX.batch.1", "wamid.FIX.batch.2", "wamid.FIX.batch.3"]
    assert [(s.wamid, s.status) for s in delivery.statuses] == [
        ("wamid.FIX.out.9", "sent"),
        ("wamid.FIX.out.9", "delivered"),
    ]
    assert [t.event for t in delivery.templates] == ["PAUSED"]
    assert delivery.event_count == 6


def test_each_message_finds_its_own_sender_profile_in_a_shared_contacts_list():
    ada, bob, _ = parse(fixture("batch_several_entries")).messages
    assert (ada.wa_id, ada.user_id, ada.profile.name) == ("15551230001", "US.1000000000000000001", "Ada Customer")
    assert (bob.wa_id, bob.user_id, bob.profile.name) == ("15551230002", None, "Bob Buyer")


# --- message types -----------------------------------------------------------------------------


def test_text_message_keeps_its_body_timestamp_and_raw_json():
    message = only_message("message_text")
    assert message.type == "text"
    assert message.text == "Hello, is the shop open today? 🙂"
    assert message.timestamp == datetime(2024, 11, 15, 19, 46, 40, tzinfo=timezone.utc)
    assert json.loads(message.raw)["id"] == "wamid.FIX.text.1"
    assert message.phone_number_id == "100200300400500"


def test_user_known_only_by_user_id_has_no_wa_id():
    message = only_message("message_text_user_id_only")
    assert message.wa_id is None
    assert message.user_id == "US.2000000000000000002"
    assert message.profile.username == "@cleo"


@pytest.mark.parametrize(
    "name,kind,media_id",
    [
        ("message_image", "image", "880000000000001"),
        ("message_video", "video", "880000000000002"),
        ("message_audio_voice", "audio", "880000000000003"),
        ("message_document", "document", "880000000000004"),
        ("message_sticker_animated", "sticker", "880000000000005"),
    ],
)
def test_media_messages_carry_their_media_fields(name, kind, media_id):
    message = only_message(name)
    assert isinstance(message.content, wa.Media)
    assert (message.type, message.content.kind, message.content.media_id) == (kind, kind, media_id)
    assert message.content.mime_type and message.content.sha256


def test_media_details_voice_animated_filename_caption_and_url():
    assert only_message("message_audio_voice").content.voice is True
    assert only_message("message_sticker_animated").content.animated is True
    document = only_message("message_document")
    assert (document.content.filename, document.caption) == ("invoice-2024-11.pdf", "My invoice")
    assert only_message("message_image").content.url.startswith("https://lookaside.fbsbx.com/")


def test_location_message():
    content = only_message("message_location").content
    assert content == wa.Location(52.520008, 13.404954, "Shop", "Alexanderplatz 1, Berlin", "https://example.com/shop")


def test_shared_contacts_message():
    content = only_message("message_contacts").content
    assert content.names == ("Dora Delivery",)
    assert content.cards[0]["phones"][0]["wa_id"] == "15551230004"


def test_interactive_button_and_list_replies():
    button = only_message("message_interactive_button_reply")
    assert (button.content.kind, button.content.reply_id, button.text) == (
        "button_reply",
        "confirm-yes",
        "Yes, confirm",
    )
    assert button.context.message_id == "wamid.FIX.out.1"
    listed = only_message("message_interactive_list_reply").content
    assert (listed.kind, listed.reply_id, listed.title, listed.description) == (
        "list_reply",
        "slot-10",
        "10:00",
        "Morning slot",
    )


def test_flow_reply_keeps_the_json_string_and_parses_it():
    content = only_message("message_interactive_nfm_reply").content
    assert content.response_json == '{"flow_token":"tok-1","rating":"5","comment":"Great"}'
    assert content.response == {"flow_token": "tok-1", "rating": "5", "comment": "Great"}


def test_flow_reply_that_is_not_json_is_kept_as_a_string():
    content = only_message("message_interactive_nfm_reply_not_json").content
    assert (content.response_json, content.response) == ("{not json", None)


def test_call_permission_reply():
    content = only_message("message_interactive_call_permission_reply").content
    assert (content.kind, content.permission) == ("call_permission_reply", "accept")
    assert content.permission_expires_at == datetime.fromtimestamp(1732305900, tz=timezone.utc)


def test_template_quick_reply_button():
    message = only_message("message_button_quick_reply")
    assert message.content == wa.Button(text="Stop promotions", payload="STOP_PROMOS")
    assert message.text == "Stop promotions"


def test_reaction_and_its_removal():
    reaction = only_message("message_reaction").content
    assert (reaction.message_id, reaction.emoji, reaction.removed) == ("wamid.FIX.text.1", "👍", False)
    assert only_message("message_reaction_removed").content.removed
    no_emoji = json.loads(fixture("message_reaction_removed"))
    del no_emoji["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"]["emoji"]
    assert parse(json.dumps(no_emoji).encode()).messages[0].content.removed


def test_order_with_loosely_typed_quantities_and_prices():
    order = only_message("message_order").content
    assert order.catalog_id == "777000111"
    assert order.items == (
        wa.OrderItem("SKU-RED-MUG", 2, Decimal("12.5"), "EUR"),
        wa.OrderItem("SKU-TEA", 3, Decimal("4.20"), "EUR"),
    )


def test_order_with_placeholder_values_defaults_them():
    body = {
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messages": [
                                {
                                    "from": "1",
                                    "id": "w1",
                                    "type": "order",
                                    "order": {
                                        "product_items": [
                                            {"quantity": "number-of-item", "item_price": "unitary-price", "currency": 5}
                                        ]
                                    },
                                }
                            ]
                        },
                    }
                ]
            }
        ]
    }
    item = parse(json.dumps(body).encode()).messages[0].content.items[0]
    assert (item.quantity, item.item_price, item.currency) == (None, None, "5")


def test_system_message_about_a_changed_number():
    message = only_message("message_system_user_changed_number")
    assert message.profile is None
    assert (message.content.kind, message.content.new_wa_id) == ("user_changed_number", "15551230022")


@pytest.mark.parametrize("name,kind", [("message_unsupported", "unsupported"), ("message_unknown", "unknown")])
def test_unsupported_and_unknown_messages_keep_their_errors(name, kind):
    message = only_message(name)
    assert message.type == kind
    assert isinstance(message.content, wa.Unsupported)
    assert message.errors[0].code == 131051
    assert message.errors[0].details.startswith("Message type is")


def test_edit_carries_the_new_version():
    content = only_message("message_edit").content
    assert (content.original_wamid, content.new_type, content.text) == (
        "wamid.FIX.text.1",
        "text",
        "Hello, is the shop open tomorrow?",
    )


def test_revoke_names_the_deleted_message():
    assert only_message("message_revoke").content == wa.Revoke("wamid.FIX.image.1")


def test_forward_and_ad_referral_context():
    message = only_message("message_forwarded_referral")
    assert message.context.forwarded and message.context.frequently_forwarded
    assert message.context.referred_product == {"catalog_id": "777000111", "product_retailer_id": "SKU-RED-MUG"}
    assert message.referral["ctwa_clid"] == "ARAkLkA"


def test_business_app_echo_is_an_outbound_message_to_the_customer():
    message = only_message("message_echo_text")
    assert (message.direction, message.wa_id, message.text) == (wa.OUTBOUND, "15551230001", "Sent from the phone app")


def test_message_without_type_is_typed_by_its_content():
    body = {
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messages": [{"from": "1", "id": "w1", "timestamp": 1700000000, "text": {"body": "hi"}}]
                        },
                    }
                ]
            }
        ]
    }
    message = parse(json.dumps(body).encode()).messages[0]
    assert (message.type, message.text) == ("text", "hi")


def test_message_without_id_is_kept_as_other_event():
    body = {"entry": [{"changes": [{"field": "messages", "value": {"messages": [{"from": "1", "type": "text"}]}}]}]}
    delivery = parse(json.dumps(body).encode())
    assert delivery.messages == ()
    assert delivery.others[0].event == "unreadable_messages"


@pytest.mark.parametrize(
    "value,expected",
    [
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)),
        (1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)),
        (1700000000.0, datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)),
        ("soon", None),
        (None, None),
        (True, None),
        (-5, None),
        (10**30, None),
        ("1e400", None),
    ],
)
def test_timestamps_are_coerced_or_dropped(value, expected):
    body = {
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messages": [
                                {"from": 1234, "id": 99, "timestamp": value, "type": "text", "text": {"body": 5}}
                            ]
                        },
                    }
                ]
            }
        ]
    }
    message = parse(json.dumps(body).encode()).messages[0]
    assert message.timestamp == expected
    assert (message.wamid, message.wa_id, message.text) == ("99", "1234", "5")


def test_lone_surrogates_are_replaced_so_text_can_be_stored():
    body = b'{"entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"1","id":"w","type":"text","text":{"body":"a\\ud800b"}}]}}]}]}'
    message = parse(body).messages[0]
    assert message.text == "a\ufffdb"
    message.raw.encode("utf-8")


# --- statuses and other fields -----------------------------------------------------------------


def test_statuses_with_conversation_pricing_and_callback_data():
    status = parse(fixture("status_sent")).statuses[0]
    assert (status.wamid, status.status, status.recipient_id) == ("wamid.FIX.out.1", "sent", "15551230001")
    assert status.pricing["pricing_model"] == "PMP"
    assert status.conversation["origin"] == {"type": "service"}
    assert status.biz_opaque_callback_data == "order-42"


@pytest.mark.parametrize(
    "name,status",
    [
        ("status_delivered", "delivered"),
        ("status_read", "read"),
        ("status_played", "played"),
        ("status_failed", "failed"),
    ],
)
def test_every_status_kind(name, status):
    assert parse(fixture(name)).statuses[0].status == status


def test_failed_status_carries_its_error():
    error = parse(fixture("status_failed")).statuses[0].errors[0]
    assert (error.code, error.title) == (131047, "Re-engagement message")
    assert error.details.startswith("Message failed to send because more than 24 hours")


def test_template_status_quality_and_category_updates():
    approved = parse(fixture("template_status_approved")).templates[0]
    assert (approved.name, approved.language, approved.event, approved.reason, approved.template_id) == (
        "order_update",
        "en_US",
        "APPROVED",
        None,
        "1500000000001",
    )
    assert parse(fixture("template_status_rejected")).templates[0].reason == "INVALID_FORMAT"
    assert parse(fixture("template_quality_update")).templates[0].quality == "YELLOW"
    assert parse(fixture("template_category_update")).templates[0].category == "MARKETING"


def test_user_preferences_stop_and_resume():
    stop = parse(fixture("user_preferences_stop")).preferences[0]
    assert (stop.wa_id, stop.marketing_opt_out, stop.profile.name) == ("15551230002", True, "Bob Buyer")
    assert parse(fixture("user_preferences_resume")).preferences[0].marketing_opt_out is False


def test_account_update_and_calls_are_other_events_with_raw_json():
    account = parse(fixture("account_update")).others[0]
    assert (account.field, account.event, account.waba_id) == ("account_update", "ACCOUNT_VIOLATION", "900800700600500")
    assert json.loads(account.raw)["violation_info"] == {"violation_type": "SCAM"}
    call = parse(fixture("calls_connect")).others[0]
    assert (call.field, call.event) == ("calls", "connect")


def test_value_level_errors_are_kept_as_an_event():
    body = {
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messages": [{"from": "1", "id": "w1", "type": "interactive"}],
                            "errors": [{"code": 131000, "title": "Something went wrong"}],
                        },
                    }
                ]
            }
        ]
    }
    delivery = parse(json.dumps(body).encode())
    assert delivery.messages[0].content is None
    assert [(o.field, o.event) for o in delivery.others] == [("messages.errors", "131000")]


def test_every_fixture_parses():
    for path in sorted(FIXTURES.glob("*.json")):
        assert parse(path.read_bytes()).event_count >= 1, path.name


def test_every_shared_corpus_file_parses(shared_dir):
    files = sorted((shared_dir / "meta-webhooks").rglob("*.json"))
    assert files
    for path in files:
        assert isinstance(parse(path.read_bytes()), wa.Delivery), path.name
