import threading
import time

import pytest

from sigdesk.batching import BatchFailed, GroupCommit


def test_concurrent_submits_share_batches_and_each_gets_its_own_result():
    batches: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        batches.append(list(items))
        time.sleep(0.01)  # a slow commit: others queue up behind it
        return [item * 10 for item in items]

    group = GroupCommit(write)
    results: dict[int, int] = {}

    def submit(n: int) -> None:
        results[n] = group.submit(n)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: n * 10 for n in range(40)}
    assert sorted(item for batch in batches for item in batch) == list(range(40))
    assert len(batches) < 40


def test_a_failed_write_fails_every_caller_in_its_batch_and_not_the_next():
    calls = 0

    def write(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk full")
        return items

    group = GroupCommit(write)
    with pytest.raises(BatchFailed, match="disk full"):
        group.submit("a")
    assert group.submit("b") == "b"


def test_a_write_that_loses_results_is_a_failure():
    group = GroupCommit(lambda items: [])
    with pytest.raises(BatchFailed, match="gave 0 results"):
        group.submit("a")


def test_batches_are_capped():
    sizes: list[int] = []
    gate = threading.Event()

    def write(items: list[int]) -> list[int]:
        gate.wait(5)
        sizes.append(len(items))
        return items

    group = GroupCommit(write, max_batch=3)
    threads = [threading.Thread(target=group.submit, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join()
    assert sum(sizes) == 10 and max(sizes) <= 3


def test_one_batch_is_written_at_a_time_even_when_the_queue_outgrows_a_batch():
    writing = threading.Lock()
    overlaps = 0

    def write(items: list[int]) -> list[int]:
        nonlocal overlaps
        if not writing.acquire(blocking=False):
            overlaps += 1
            return items
        try:
            time.sleep(0.002)
            return items
        finally:
            writing.release()

    group = GroupCommit(write, max_batch=2)
    results: list[int] = []
    threads = [threading.Thread(target=lambda n=n: results.append(group.submit(n))) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(30)) and overlaps == 0


def test_idle_is_called_once_a_run_of_batches_ends_and_never_during_a_write():
    busy = threading.Lock()
    events: list[str] = []

    def write(items: list[int]) -> list[int]:
        assert busy.acquire(blocking=False), "a write overlapped another step"
        time.sleep(0.002)
        events.append("write")
        busy.release()
        return items

    def idle() -> None:
        assert busy.acquire(blocking=False), "idle overlapped a write"
        events.append("idle")
        busy.release()

    group = GroupCommit(write, idle=idle)
    threads = [threading.Thread(target=group.submit, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert events[-1] == "idle" and "write" in events
    assert group.submit(99) == 99 and events[-2:] == ["write", "idle"]
