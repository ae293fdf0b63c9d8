"""Schemathesis against the real app under waitress, from the app's own OpenAPI document.

Every check is on (no 5xx, answers match their declared schema, status codes and content types
documented, bad input refused, good input accepted); the run is seeded and bounded in cases and
time so it stays in the default test run.
"""

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sigdesk.auth import services as accounts
from sigdesk.db import utcnow
from sigdesk.models import Contact, Conversation, Message, Template, User

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")


def _seed(app, email: str) -> str:
    """A conversation with an open window and messages, and a template, so the lists have items to check."""
    now = utcnow()
    with app.extensions["sigdesk"].database.session() as session:
        contact = Contact(wa_id="15550001", profile_name="Fuzzy")
        session.add(contact)
        session.flush()
        conversation = Conversation(
            contact_id=contact.id, last_message_at=now, last_inbound_at=now - timedelta(minutes=5)
        )
        session.add(conversation)
        session.flush()
        for n in range(3):
            session.add(
                Message(
                    conversation_id=conversation.id,
                    contact_id=contact.id,
                    direction="in",
                    type="text",
                    text=f"hello {n}",
                    wamid=f"wamid.{n}",
                    timestamp=now - timedelta(minutes=n),
                )
            )
        session.add(
            Template(
                name="welcome",
                language="en",
                status="APPROVED",
                category="UTILITY",
                components=json.dumps([{"type": "BODY", "text": "Hi {{1}}"}]),
            )
        )
        user = session.query(User).filter_by(email=email).one()
        return accounts.create_api_token(session, user, "fuzz")


def test_the_api_answers_every_generated_request_as_its_document_says(app, owner, live_server, tmp_path):
    token = _seed(app, owner.email)
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{live_server.url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        "40",
        "--seed",
        "12",
        "--max-time",
        "45",
        "--workers",
        "1",  # CPython 3.11's ast.parse is not thread-safe, and hypothesis parses lambdas while generating
        "--no-color",
        "--warnings",
        "off",
        "--report",
        "ndjson",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    print(result.stdout[-700:])  # the figures, with -s
