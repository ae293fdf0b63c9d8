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
