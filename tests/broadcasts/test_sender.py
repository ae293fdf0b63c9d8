"""The sending process: a real child making real HTTP calls to the fake Graph API, its answers as the
engine records them, and what happens to calls when it is stopped or dies."""

from __future__ import annotations

import json
import os
import signal
import threading

import httpx
import pytest

from sigdesk.broadcasts.sender import LOST, SenderProcess, from_wire, to_wire
from sigdesk.whatsapp.client import NOT_CONNECTED, GraphClient
from sigdesk.whatsapp.errors import GraphError
from tests.fakes.graph import PHONE_NUMBER_ID, TOKEN, WABA_ID
from tests.waiting import wait_for


def payload(to: str) -> str:
    return json.dumps(
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"body": "Fresh bread at 7"},
        }
    )


class Heard:
    """What the process answered, by message id."""

    def __init__(self) -> None:
        self.answers: dict[int, str | Exception | None] = {}
        self.lock = threading.Lock()

    def __call__(self, message_id: int, outcome: str | Exception | None) -> None:
        with self.lock:
            self.answers[message_id] = outcome


@pytest.fixture
def recipe(fake_graph):
    client = GraphClient(fake_graph.url, "v21.0", TOKEN, PHONE_NUMBER_ID, WABA_ID, timeout=5.0)
    yield client.recipe()
    client.close()


def test_every_call_is_answered_with_metas_wamid_or_its_error_in_full(fake_graph, recipe):
    fake_graph.fail_for("4477000001", 131049, title="Marketing message limit")
    heard = Heard()
    process = SenderProcess(4, heard)
    try:
        for message_id in range(1, 11):
            assert process.prepare(recipe) and process.send(message_id, payload(f"44770000{message_id:02d}"))
        wait_for(lambda: len(heard.answers) == 10)
    finally:
        process.stop()
    refused = heard.answers.pop(1)
    assert isinstance(refused, GraphError) and refused.code == 131049 and refused.status == 400
    assert all(isinstance(wamid, str) and wamid.startswith("wamid.") for wamid in heard.answers.values())
    assert sorted(body["to"] for body in fake_graph.sent) == [f"44770000{n:02d}" for n in range(2, 11)]
    assert fake_graph.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_without_a_connection_each_call_is_refused_in_words_and_nothing_leaves(fake_graph):
    heard = Heard()
    process = SenderProcess(2, heard)
    try:
        assert process.prepare(None) and process.send(7, payload("4477000007"))
        wait_for(lambda: 7 in heard.answers)
    finally:
        process.stop()
    assert isinstance(heard.answers[7], ValueError) and str(heard.answers[7]) == NOT_CONNECTED
    assert fake_graph.sent == []


def test_a_stop_answers_the_calls_never_begun_so_they_go_back_to_the_queue(fake_graph, recipe):
    fake_graph.delay = 0.5
    heard = Heard()
    process = SenderProcess(1, heard)
    for message_id in range(1, 6):
        assert process.prepare(recipe) and process.send(message_id, payload(f"44770000{message_id:02d}"))
    wait_for(lambda: len(fake_graph.requests) >= 1)
    process.stop()
    wait_for(lambda: len(heard.answers) == 5)
    began = [message_id for message_id, outcome in heard.answers.items() if outcome is not None]
    assert len(began) == 1 and isinstance(heard.answers[began[0]], str)
    assert len(fake_graph.sent) == 1


def test_calls_out_when_the_process_dies_are_answered_as_maybe_sent(fake_graph, recipe):
    """Killed mid-call, the process cannot say whether Meta got the message: the engine marks such a
    recipient `unknown` and never sends it again."""
    fake_graph.delay = 2.0
    heard = Heard()
    process = SenderProcess(2, heard)
    assert process.prepare(recipe) and process.send(1, payload("4477000001"))
    wait_for(lambda: len(fake_graph.requests) >= 1)
    os.kill(process._process.pid, signal.SIGKILL)
    wait_for(lambda: 1 in heard.answers)
    lost = heard.answers[1]
    assert isinstance(lost, GraphError) and lost.transport and str(lost) == LOST
    assert lost.__cause__ is None  # not a refused connection: it may have reached Meta
    heard.answers.clear()
    assert process.prepare(recipe) and process.send(2, payload("4477000002"))  # a new process takes over
    wait_for(lambda: 2 in heard.answers, timeout=10)
    assert isinstance(heard.answers[2], str)
    process.stop()


def test_answers_cross_the_pipe_as_the_engine_needs_them():
    error = GraphError("(#131049) limit", status=400, code=131049, subcode=2494055, title="Limit", details="later")
    back = from_wire(json.loads(json.dumps(to_wire(3, error))))
    assert isinstance(back, GraphError) and str(back) == "(#131049) limit"
    assert (back.status, back.code, back.subcode, back.title, back.details) == (400, 131049, 2494055, "Limit", "later")
    assert back.retryable == error.retryable and back.human == error.human
    refused = GraphError("could not connect", transport=True)
    refused.__cause__ = httpx.ConnectError("refused")
    back = from_wire(to_wire(4, refused))
    assert back.transport and isinstance(back.__cause__, httpx.ConnectError)  # never left: may be sent again
    assert str(from_wire(to_wire(5, ValueError("unreadable")))) == "unreadable"
    assert from_wire(to_wire(6, "wamid.X")) == "wamid.X"
    strange = from_wire(to_wire(7, RuntimeError("boom")))
    assert isinstance(strange, GraphError) and strange.transport and strange.__cause__ is None
    assert from_wire({"id": 8, "unstarted": True}) is None
