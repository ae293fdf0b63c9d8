"""The test factories build what SigDesk really reads: bodies Meta's parser accepts, rows the schema accepts."""

import hashlib

import pytest

from sigdesk.auth import services as accounts
from sigdesk.whatsapp.webhook import parse, verify_signature
from tests import factories


def test_webhook_bodies_parse_as_the_messages_and_statuses_they_describe():
    delivery = parse(factories.signed(factories.text_message("15550001", "Hi", wamid="wamid.A", name="Ada"))[0])
    assert [(m.wamid, m.type, m.wa_id, m.text) for m in delivery.messages] == [("wamid.A", "text", "15550001", "Hi")]
    assert delivery.profiles[0].name == "Ada"
    image = parse(factories.signed(factories.media_message("15550001", "image", "m1", data=b"png", caption="c"))[0])
    assert image.messages[0].type == "image" and image.messages[0].caption == "c"
    assert (
        factories.media_message("1", data=b"png")["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["sha256"]
        == hashlib.sha256(b"png").hexdigest()
    )
    reaction = parse(factories.signed(factories.reaction("15550001", "wamid.A", "🎉"))[0]).messages[0]
    assert reaction.type == "reaction"
    order = parse(factories.signed(factories.cart_message("15550001", text="after 5"))[0]).messages[0]
    assert order.type == "order" and order.text == "after 5"
    status = parse(factories.signed(factories.status_update("wamid.A", "read", "15550001", at=1700000000))[0])
    assert [(s.wamid, s.status, s.recipient_id) for s in status.statuses] == [("wamid.A", "read", "15550001")]


def test_signed_bodies_carry_the_signature_meta_would_send():
    raw, headers = factories.signed(factories.text_message("15550001"), "s3cret")
    assert verify_signature("s3cret", raw, headers["X-Hub-Signature-256"])
    assert not verify_signature("other", raw, headers["X-Hub-Signature-256"])


@pytest.mark.database
def test_rows_are_built_with_unique_defaults_on_every_database(app):
    with app.extensions["sigdesk"].database.session() as session:
        owner = factories.user(session, "owner")
        assert accounts.find_user(session, owner.email).role == "owner"
        assert factories.api_token(session, owner)
        first, second = factories.conversation(session), factories.conversation(session)
        assert first.contact_id != second.contact_id
        kinds = ["text", *factories.MEDIA_KINDS, "location", "reaction", "template"]
        sent = [factories.message(session, first, "out" if n % 2 else "in", kind) for n, kind in enumerate(kinds)]
        assert len({m.wamid for m in sent}) == len(kinds) and sent[1].media_id and sent[1].sha256
        factories.note(session, first, author=owner)
        factories.label(session, "vip", on=[first, second])
        assert factories.template(session, body="Hi {{1}}").components == '[{"type": "BODY", "text": "Hi {{1}}"}]'
