"""Foundation benchmark: how fast `sigdesk serve` starts, how fast it serves a page, how long the tests take.

Run from the project root:

    .venv/bin/python tests/perf/bench_foundation.py                 # start-up and login-page latency
    .venv/bin/python tests/perf/bench_foundation.py --suite         # also the test suite on SQLite and MariaDB

1. Start-up: `sigdesk serve` in a child process (SQLite, the default) until the first 200 on /healthz;
   cold = a fresh data dir each run (creates keys and runs every migration), warm = an already migrated one.
   One unmeasured start first, so every measured run finds Python's bytecode caches in place.
2. Latency: GET /login, one keep-alive connection over loopback, client-side round trip, against
   `sigdesk serve` and against a bare Flask app returning a constant 200 under the same waitress
   settings; the ratio shows SigDesk's own cost per request. Servers run in child processes so the
   client does not share their GIL.
3. --suite: wall time of `pytest -q -x -p no:randomly` on SQLite, then with SIGDESK_TEST_DATABASE_URL.

Readable lines go to stdout; the last line is the same numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
PASSWORD = "correct horse battery"

BARE_SERVER = """
import sys
from flask import Flask
from waitress.server import create_server

app = Flask("bare")
app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024

@app.get("/login")
def login():
    return "ok"

server = create_server(
    app, host="127.0.0.1", port=0, threads=int(sys.argv[1]), ident="SigDesk",
    max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + 65536, clear_untrusted_proxy_headers=True,
)
print(f"running on http://127.0.0.1:{server.effective_port}/", flush=True)
server.run()
"""


def _ctrl_c_as_usual() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SIGDESK_DATABASE_URL", "SIGDESK_DATA_DIR")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Child:
    """A server process; its port comes from the line it prints once it listens."""

    def __init__(self, args: list[str], log_file: Path) -> None:
        self.log = open(log_file, "w")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            preexec_fn=_ctrl_c_as_usual,
        )
        self.port = None
        for line in self.process.stdout:
            match = re.search(r"running on https?://127\.0\.0\.1:(\d+)/", line)
            if match:
                self.port = int(match.group(1))
                self.listening = time.perf_counter() - self.started
                break
        if self.port is None:
            self.stop()
            raise RuntimeError(f"server did not start; see {log_file}")

    def first_ok(self, path: str = "/healthz", timeout: float = 60.0) -> float:
        """Seconds from spawning the process to the first 200 (polled every 5 ms, a new connection each time)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2.0, trust_env=False).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.005)
        raise TimeoutError(f"no 200 on {path} within {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self.log.close()


def sigdesk(data_dir: Path, threads: int, log_file: Path) -> Child:
    args = [PYTHON, "-m", "sigdesk", "--data-dir", str(data_dir), "serve", "--host", "127.0.0.1", "--port", "0"]
    return Child(args + ["--threads", str(threads)], log_file)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def bench_start(work: Path, runs: int) -> dict:
    log_file = work / "start.log"
    primer = sigdesk(work / "primer", 8, log_file)
    primer.first_ok()
    primer.stop()
    cold, cold_listen = [], []
    for run in range(runs):
        child = sigdesk(work / f"cold-{run}", 8, log_file)
        cold.append(child.first_ok())
        cold_listen.append(child.listening)
        child.stop()
    warm, warm_listen = [], []
    for _ in range(runs):
        child = sigdesk(work / "cold-0", 8, log_file)
        warm.append(child.first_ok())
        warm_listen.append(child.listening)
        child.stop()
    interpreter = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([PYTHON, "-c", "pass"], check=True)
        interpreter.append(time.perf_counter() - started)
    return {
        "cold_start_s": summary(cold),
        "cold_listening_s": summary(cold_listen),
        "warm_start_s": summary(warm),
        "warm_listening_s": summary(warm_listen),
        "bare_python_start_s": summary(interpreter),
    }


def time_requests(port: int, path: str, count: int, warmup: int) -> dict[str, float]:
    timings = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10.0) as client:
        for _ in range(warmup):
            client.get(path).raise_for_status()
        for _ in range(count):
            started = time.perf_counter()
            response = client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path} answered {response.status_code}")
        size = len(response.content)
    return {
        "p50": percentile(timings, 50),
        "p95": percentile(timings, 95),
        "p99": percentile(timings, 99),
        "mean": statistics.fmean(timings),
        "min": min(timings),
        "max": max(timings),
        "count": count,
        "bytes": size,
    }


def bench_latency(work: Path, count: int, warmup: int, threads: int) -> dict:
    data_dir = work / "latency"
    created = subprocess.run(
        [
            PYTHON,
            "-m",
            "sigdesk",
            "--data-dir",
            str(data_dir),
            "user",
            "create",
            "--email",
            "owner@example.com",
            "--name",
            "Owner",
            "--role",
            "owner",
            "--password-stdin",
        ],
        cwd=ROOT,
        env=_env(),
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
    )
    if created.returncode != 0:
        raise RuntimeError(f"could not create the benchmark user: {created.stdout}{created.stderr}")
    child = sigdesk(data_dir, threads, work / "latency.log")
    try:
        child.first_ok()
        login = time_requests(child.port, "/login", count, warmup)
    finally:
        child.stop()
    bare_child = Child([PYTHON, "-c", BARE_SERVER, str(threads)], work / "bare.log")
    try:
        bare_child.first_ok("/login")
        bare = time_requests(bare_child.port, "/login", count, warmup)
    finally:
        bare_child.stop()
    return {
        "login_get_ms": login,
        "bare_get_ms": bare,
        "ratio_p50": login["p50"] / bare["p50"],
        "ratio_p95": login["p95"] / bare["p95"],
    }


def mysql_reachable(url: str) -> str | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
    except SQLAlchemyError as exc:
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()


def run_suite(pytest_args: list[str], mysql_url: str | None) -> dict:
    env = _env()
    env.pop("SIGDESK_TEST_DATABASE_URL", None)
    if mysql_url:
        env["SIGDESK_TEST_DATABASE_URL"] = mysql_url
    started = time.perf_counter()
    result = subprocess.run([PYTHON, "-m", "pytest", *pytest_args], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return {"seconds": elapsed, "exit_code": result.returncode, "summary": lines[-1] if lines else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="start-ups per kind (default 5)")
    parser.add_argument("--requests", type=int, default=500, help="timed GETs per server (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed GETs first (default 50)")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads, both servers (default 8)")
    parser.add_argument("--suite", action="store_true", help="also time the test suite on SQLite and MariaDB")
    parser.add_argument("--mysql-url", default=MYSQL_URL, help=f"MariaDB for --suite (default {MYSQL_URL})")
    parser.add_argument("--pytest-args", default="-q -x -p no:randomly", help="arguments for the suite runs")
    args = parser.parse_args()

    result: dict = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "database": "sqlite",
    }
    print(
        f"SigDesk foundation benchmark: Python {result['python']}, {result['cpus']} CPUs, SQLite data dir in a temp folder"
    )
    with tempfile.TemporaryDirectory(prefix="sigdesk-bench-") as folder:
        work = Path(folder)
        start = bench_start(work, args.runs)
        result.update(start)
        for kind in ("cold", "warm"):
            first, listening = start[f"{kind}_start_s"], start[f"{kind}_listening_s"]
            print(
                f"{kind} start to first 200 on /healthz: median {first['median']:.3f} s "
                f"(min {first['min']:.3f}, max {first['max']:.3f}, {args.runs} runs); "
                f"listening after median {listening['median']:.3f} s"
            )
        print(f"bare `python -c pass` for comparison: median {start['bare_python_start_s']['median']:.3f} s")

        latency = bench_latency(work, args.requests, args.warmup, args.threads)
        result.update(latency)
    for label, key in (("SigDesk GET /login", "login_get_ms"), ("bare Flask GET (constant 200)", "bare_get_ms")):
        numbers = latency[key]
        print(
            f"{label}: p50 {numbers['p50']:.2f} ms, p95 {numbers['p95']:.2f} ms, p99 {numbers['p99']:.2f} ms, "
            f"mean {numbers['mean']:.2f} ms ({numbers['count']} requests, keep-alive, {numbers['bytes']} bytes)"
        )
    print(f"ratio SigDesk / bare Flask: p50 {latency['ratio_p50']:.1f}x, p95 {latency['ratio_p95']:.1f}x")

    if args.suite:
        pytest_args = args.pytest_args.split()
        suite = {"command": f"{PYTHON} -m pytest {' '.join(pytest_args)}", "sqlite": run_suite(pytest_args, None)}
        print(
            f"test suite on SQLite: {suite['sqlite']['seconds']:.1f} s, exit {suite['sqlite']['exit_code']} ({suite['sqlite']['summary']})"
        )
        problem = mysql_reachable(args.mysql_url)
        if problem:
            suite["mysql"] = {"skipped": problem}
            print(f"test suite on MariaDB: skipped, {args.mysql_url} is not reachable ({problem})")
        else:
            suite["mysql"] = run_suite(pytest_args, args.mysql_url)
            print(
                f"test suite on MariaDB: {suite['mysql']['seconds']:.1f} s, exit {suite['mysql']['exit_code']} ({suite['mysql']['summary']})"
            )
        result["suite"] = suite
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
