"""The event bus: ordered ids, catch-up from the ring, resync when that is impossible, slow clients dropped."""

import threading

import pytest

from sigdesk.events.bus import Closed, EventBus, TooManyStreams


def test_events_get_increasing_ids_in_this_process_epoch():
    bus = EventBus()
    first = bus.publish("message.created", 7, None, message_id=1)
    second = bus.publish("message.updated", 7, 3, message_id=1)
    assert first.id == f"{bus.epoch}-1" and second.id == f"{bus.epoch}-2"
    assert bus.last_id == second.id
    assert second.payload() == {"conversation_id": 7, "message_id": 1}


def test_since_returns_what_came_after_an_id():
    bus = EventBus()
    ids = [bus.publish("message.created", n, None, message_id=n).id for n in range(5)]
    assert [event.id for event in bus.since(ids[1])] == ids[2:]
    assert bus.since(ids[-1]) == []


def test_an_id_from_another_process_start_cannot_be_caught_up():
    before = EventBus()
    old_id = before.publish("message.created", 1, None).id
    after = EventBus()
    after.publish("message.created", 1, None)
    assert after.epoch != before.epoch
    assert after.since(old_id) is None
    assert after.since("garbage") is None
    assert after.since(f"{after.epoch}-99") is None


def test_an_id_older_than_the_ring_cannot_be_caught_up():
    bus = EventBus(ring_size=3)
    ids = [bus.publish("message.created", n, None).id for n in range(6)]
    assert bus.since(ids[0]) is None
    assert [event.id for event in bus.since(ids[2])] == ids[3:]


def test_subscribing_with_a_last_id_reports_what_was_missed_then_receives_new_events():
    bus = EventBus()
    seen = bus.publish("message.created", 1, None).id
    missed = bus.publish("message.created", 2, None)
    subscription = bus.subscribe(seen)
    assert subscription.missed == [missed]
    assert subscription.start_id == missed.id
    new = bus.publish("note.created", 3, None, note_id=9)
    assert subscription.get(timeout=1) == [new]
    assert subscription.get(timeout=0.01) == []


def test_subscribing_with_an_unknown_id_asks_for_a_resync():
    bus = EventBus()
    assert bus.subscribe("deadbeef-4").missed is None
    assert bus.subscribe(None).missed == []


def test_a_subscriber_that_falls_behind_is_dropped_without_blocking_the_publisher():
    bus = EventBus(queue_size=2)
    slow = bus.subscribe()
    fast = bus.subscribe()
    for n in range(3):
        bus.publish("message.created", n, None)
        assert len(fast.get(timeout=1)) == 1
    assert bus.subscriber_count == 1
    assert len(slow.get(timeout=1)) == 2
    with pytest.raises(Closed):
        slow.get(timeout=1)
    assert slow.overflowed and not fast.overflowed


def test_the_number_of_subscribers_can_be_capped():
    bus = EventBus()
    first = bus.subscribe(limit=1)
    with pytest.raises(TooManyStreams):
        bus.subscribe(limit=1)
    first.close()
    bus.subscribe(limit=1)


def test_disconnect_all_ends_every_subscription_and_the_bus_goes_on():
    bus = EventBus()
    subscriptions = [bus.subscribe() for _ in range(3)]
    bus.disconnect_all()
    for subscription in subscriptions:
        with pytest.raises(Closed):
            subscription.get(timeout=1)
    assert bus.subscriber_count == 0
    later = bus.subscribe()
    event = bus.publish("message.created", 1, None)
    assert later.get(timeout=1) == [event]


def test_a_waiting_subscriber_wakes_as_soon_as_an_event_is_published():
    bus = EventBus()
    subscription = bus.subscribe()
    received = []
    waiter = threading.Thread(target=lambda: received.extend(subscription.get(timeout=5)))
    waiter.start()
    event = bus.publish("message.created", 1, None)
    waiter.join(timeout=2)
    assert received == [event]


def test_concurrent_publishers_produce_unique_ids_delivered_in_order():
    bus = EventBus(queue_size=100_000, ring_size=100_000)
    subscription = bus.subscribe()
    threads = [
        threading.Thread(target=lambda: [bus.publish("message.created", 1, None) for _ in range(500)]) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    received = subscription.get(timeout=1)
    assert [event.seq for event in received] == list(range(1, 4001))
    assert len({event.id for event in received}) == 4000


def test_a_reassignment_reaches_the_former_assignee_too():
    bus = EventBus()
    event = bus.publish("conversation.updated", 5, 2, previous_assignee_ids=(1,))
    assert event.audience == (2, 1)
