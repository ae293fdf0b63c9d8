"""Whatever Meta (or a buggy relay) signs, the webhook answers without a 500 and keeps the bytes."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from sigdesk.inbound import services
from sigdesk.models import WebhookDelivery
from sigdesk.settings import services as settings_store
from sigdesk.whatsapp.webhook import signature_header

SECRET = "fuzz-secret"
URL = "/webhooks/whatsapp"
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.text(min_size=250, max_size=400),
    st.sampled_from(["", "1700000000", "wamid.X", "NaN", "\u0000", "\U0001f600", "\ud800"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
TYPES = [
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "unsupported",
    "unknown",
    "edit",
    "revoke",
]
loose = st.one_of(json_values, st.text(max_size=20), st.integers())
message = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text(min_size=1, max_size=300), st.integers()),
        "type": st.one_of(st.sampled_from(TYPES), loose),
    },
    optional={
        "from": loose,
        "from_user_id": loose,
        "timestamp": loose,
        "context": json_values,
        "referral": json_values,
        "errors": json_values,
        **{kind: json_values for kind in TYPES},
        "reaction": st.fixed_dictionaries({"message_id": loose}, optional={"emoji": loose}),
        "order": st.fixed_dictionaries({"product_items": st.lists(json_values, max_size=3)}),
        "interactive": st.fixed_dictionaries(
            {"type": st.sampled_from(["button_reply", "list_reply", "nfm_reply", "call_permission_reply"]) | loose},
            optional={
                "button_reply": json_values,
                "list_reply": json_values,
                "nfm_reply": st.fixed_dictionaries({"response_json": st.one_of(st.text(max_size=30), json_values)}),
            },
        ),
    },
)
status = st.fixed_dictionaries(
    {"id": loose, "status": st.one_of(st.sampled_from(["sent", "delivered", "read", "failed", "played"]), loose)},
    optional={"timestamp": loose, "errors": json_values, "conversation": json_values, "pricing": json_values},
)
profile = st.fixed_dictionaries({}, optional={"wa_id": loose, "user_id": loose, "profile": json_values})
messages_value = st.fixed_dictionaries(
    {},
    optional={
        "contacts": st.lists(profile, max_size=3),
        "messages": st.lists(message, max_size=3),
        "statuses": st.lists(status, max_size=3),
        "errors": json_values,
        "metadata": json_values,
        "user_preferences": st.lists(json_values, max_size=2),
        "message_echoes": st.lists(message, max_size=2),
    },
)
FIELDS = [
    "messages",
    "smb_message_echoes",
    "user_preferences",
    "account_update",
    "calls",
    "message_template_status_update",
    "message_template_quality_update",
    "template_category_update",
]
change = st.fixed_dictionaries(
    {
        "field": st.one_of(st.sampled_from(FIELDS), loose),
        "value": st.one_of(
            messages_value,
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "event": loose,
                    "message_template_name": loose,
                    "message_template_language": loose,
                    "message_template_id": loose,
                    "new_quality_score": loose,
                    "reason": loose,
                },
            ),
        ),
    }
)
envelope = st.fixed_dictionaries(
    {
        "object": st.just("whatsapp_business_account"),
        "entry": st.lists(
            st.fixed_dictionaries({"id": loose, "changes": st.lists(change, max_size=3)}, optional={"time": loose}),
            max_size=3,
        ),
    },
)
bodies = st.one_of(
    envelope.map(lambda value: json.dumps(value).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=300),
)


@pytest.fixture
def webhook(app, auth):
    auth.create_user("owner")
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        settings_store.set_value(session, state.cipher, "whatsapp.app_secret", SECRET)
    return app


@pytest.mark.database
@FUZZ
@given(raw=bodies)
def test_signed_bodies_of_any_shape_are_stored_and_answered_200(webhook, raw):
    client = webhook.test_client()
    response = client.post(URL, data=raw, headers={"X-Hub-Signature-256": signature_header(SECRET, raw)})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] in ("processed", "quarantined")


@FUZZ
@given(
    raw=st.binary(max_size=200),
    header=st.one_of(st.none(), st.text(st.characters(blacklist_characters="\r\n"), max_size=80)),
)
def test_unsigned_bodies_are_refused_with_403_never_500(webhook, raw, header):
    headers = {} if header is None else {"X-Hub-Signature-256": header.encode("utf-8", "replace").decode("latin-1")}
    response = webhook.test_client().post(URL, data=raw, headers=headers)
    assert response.status_code == 403


@pytest.mark.database
@FUZZ
@given(raw=bodies)
def test_processing_a_weird_delivery_never_raises_and_never_fails(webhook, raw):
    database = webhook.extensions["sigdesk"].database
    with database.session() as session:
        delivery_id = services.store_delivery(session, raw, None, source="relay")
    with database.session() as session:
        state = services.apply_delivery(session, delivery_id)
    assert state in ("processed", "quarantined")
    with database.session() as session:
        assert (
            session.scalar(select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.state == "failed"))
            == 0
        )
