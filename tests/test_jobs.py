import threading

from sqlalchemy import text


def test_worker_runs_tasks_on_its_thread_and_stops(app):
    worker = app.extensions["sigdesk"].worker
    seen = threading.Event()
    names = []

    def task(session):
        session.execute(text("SELECT 1"))
        names.append(threading.current_thread().name)
        seen.set()
        return 0

    worker.register("probe", task)
    worker.start()
    worker.wake()
    assert seen.wait(5)
    worker.stop()
    assert not worker.running
    assert names[0] == "sigdesk-jobs"


def test_a_failing_task_does_not_stop_the_others(app, caplog):
    worker = app.extensions["sigdesk"].worker
    ran = []

    def broken(session):
        raise RuntimeError("boom")

    worker.register("broken", broken)
    worker.register("fine", lambda session: ran.append(1) or 1)
    assert worker.run_once() == 1
    assert ran == [1]
    assert "background task broken failed" in caplog.text


def test_loops_run_on_their_own_threads_and_restart_after_a_crash(app, caplog, monkeypatch):
    import sigdesk.jobs

    monkeypatch.setattr(sigdesk.jobs, "LOOP_RESTART_SECONDS", 0.05)
    worker = app.extensions["sigdesk"].worker
    calls = []
    running = threading.Event()
    interrupted = threading.Event()

    def loop(stop):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise RuntimeError("boom")
        running.set()
        stop.wait(30)

    worker.add_loop("probe", loop, interrupted.set)
    worker.start()
    assert running.wait(5)
    worker.stop()
    assert interrupted.is_set()
    assert calls[-1] == "sigdesk-probe" and len(calls) == 2
    assert "background loop probe failed" in caplog.text


def test_a_wake_for_one_task_runs_only_it_and_a_burst_of_wakes_shares_one_run(app):
    """Ingest wakes the outbox consumers many times a second; the media fetcher, the sender and the
    retention purge must not run each time, and a burst of wakes is one run of the consumers."""
    from sigdesk.db import Database
    from sigdesk.jobs import Worker

    database: Database = app.extensions["sigdesk"].database
    worker = Worker(database, idle_seconds=30)
    runs = {"gathered": 0, "other": 0}
    first = threading.Event()

    def gathered(session):
        runs["gathered"] += 1
        first.set()
        return 0

    worker.register("gathered", gathered, gather=0.3)
    worker.register("other", lambda session: runs.__setitem__("other", runs["other"] + 1) or 0)
    worker.start()
    try:
        deadline = threading.Event()
        deadline.wait(0.3)  # the first pass at start runs everything once
        runs.update(gathered=0, other=0)
        first.clear()
        for _ in range(20):
            worker.wake("gathered")
        assert first.wait(5)
        deadline.wait(0.5)
        assert runs == {"gathered": 1, "other": 0}
        worker.wake()  # a plain wake still runs every task
        deadline.wait(0.5)
        assert runs["other"] == 1
    finally:
        worker.stop()


def test_wakes_for_one_task_never_starve_the_others(app):
    """Under a steady stream of ingest's wakes, media fetching, sending and the purge still run."""
    from sigdesk.jobs import Worker

    worker = Worker(app.extensions["sigdesk"].database, idle_seconds=0.5)
    others = []
    worker.register("gathered", lambda session: 0)
    worker.register("other", lambda session: others.append(1) or 0)
    worker.start()
    try:
        pause = threading.Event()
        for _ in range(30):  # a wake every 0.05 s for 1.5 s: never an idle tick
            worker.wake("gathered")
            pause.wait(0.05)
        assert len(others) >= 3
    finally:
        worker.stop()
