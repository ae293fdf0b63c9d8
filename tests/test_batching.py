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
