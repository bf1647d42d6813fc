"""Several hosts on one PostgreSQL, as an operator runs them: the database restarted
mid-drain, a host lost, a host cut off by a partition, a host whose clock is wrong,
concurrent retries over HTTP. Hosts are network namespaces (see netlab.py)."""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
import yaml
from conftest import run_counts, runs
from helpers import poll_until

from hopper.app import queue
from hopper.app import settings as settings_mod

SKEW = Path(__file__).parent / "skew"  # a sitecustomize that sets this host's clock wrong


def _client(lab):
    """This test process's queue client on the lab's database."""
    path = lab.folder / "client.yaml"
    path.write_text(yaml.safe_dump({"database": lab.database,
                                    "tasks": {"modules": ["lab_tasks"]}}))
    return queue.configure(settings_mod.load(path))


def _rows(lab, statement: str, params=()) -> list[tuple]:
    with psycopg.connect(lab.database, connect_timeout=10) as conn:
        return conn.execute(statement, params).fetchall()


def _status_counts(lab) -> dict[str, int]:
    return dict(_rows(lab, "SELECT status, count(*) FROM tasks GROUP BY status"))


def _lost_attempts(lab) -> dict[int, int]:
    return dict(_rows(lab, "SELECT task_id, count(*) FROM task_attempts WHERE kind = 'lost'"
                           " GROUP BY task_id"))


def _tracebacks(daemons) -> list[str]:
    return [d.host.name for d in daemons if "Traceback" in d.log()]


def test_database_restart_mid_drain_loses_nothing_and_every_daemon_stays_up(lab, start_daemon):
    hosts = [lab.add_host(f"h{i}") for i in (1, 2, 3)]
    daemons = [start_daemon(h, lease="10s") for h in hosts]
    _client(lab)
    total = 5000
    ids = queue.enqueue_many([{"name": "lab.record"} for _ in range(total)])
    poll_until(lambda: _status_counts(lab).get("succeeded", 0) >= 1000, timeout=120)
    restarted_at = time.time()
    lab.restart_postgres()
    restart_took = time.time() - restarted_at

    def drained():
        try:
            return _status_counts(lab).get("succeeded", 0) == total
        except psycopg.OperationalError:
            return False
    poll_until(drained, timeout=240, interval=0.5,
               message=lambda: f"not drained: {_status_counts(lab)}")
    drain_done = time.time()
    counts = run_counts(lab)
    assert set(counts) == set(ids)  # none lost
    # Each ran once, unless a rescue (a lost attempt, in its history) made it run again.
    lost = _lost_attempts(lab)
    assert {t: n for t, n in counts.items() if n != 1 + lost.get(t, 0)} == {}
    assert all(d.alive() for d in daemons)
    assert all(live_workers_now(lab, h.name) == 2 for h in hosts)
    codes = [d.stop() for d in daemons]
    assert codes == [0, 0, 0], [d.log()[-3000:] for d in daemons]
    assert _tracebacks(daemons) == []
    for daemon in daemons:
        log = daemon.log()
        assert "lost the database" in log and "the database is back" in log, log[-3000:]
        lost = [line.split(": lost the database")[0].split(": ", 1)[1]
                for line in log.splitlines() if ": lost the database" in line]
        assert len(lost) == len(set(lost)), lost  # one warning per component, not per try
    print(f"\nrestart took {restart_took:.1f}s; drain done {drain_done - restarted_at:.1f}s"
          f" after it; tasks run twice: {sum(n > 1 for n in counts.values())}")


def live_workers_now(lab, host: str) -> int:
    from conftest import live_workers

    return live_workers(lab.database, host)


def test_a_lost_hosts_running_tasks_are_rescued_within_the_lease_plus_two_seconds(
        lab, start_daemon):
    h1, h2 = lab.add_host("h1"), lab.add_host("h2")
    lease = 4.0
    doomed = start_daemon(h1, lease=f"{lease:g}s")
    _client(lab)
    ids = queue.enqueue_many([{"name": "lab.hold", "args": {"seconds": 1.5}} for _ in range(30)])
    poll_until(lambda: len(_rows(lab, "SELECT id FROM tasks WHERE status = 'running'")) == 2,
               timeout=30)
    survivor = start_daemon(h2, lease=f"{lease:g}s")
    held = [r[0] for r in _rows(lab, "SELECT id FROM tasks WHERE status = 'running'"
                                     " AND worker LIKE %s", ("h1:%",))]
    assert held
    h1.kill_all()
    killed_at = time.time()
    poll_until(lambda: _status_counts(lab).get("succeeded", 0) == len(ids), timeout=120,
               interval=0.2, message=lambda: f"{_status_counts(lab)}")
    rescued = dict(_rows(lab, "SELECT task_id, min(finished_at) FROM task_attempts"
                              " WHERE kind = 'lost' GROUP BY task_id"))
    assert set(held) <= set(rescued)
    delays = [rescued[t] - killed_at for t in held]
    assert max(delays) <= lease + 2, delays
    assert set(run_counts(lab)) == set(ids)  # none lost
    assert not doomed.alive()
    assert survivor.stop() == 0
    print(f"\nrescued {len(held)} task(s) {min(delays):.1f}-{max(delays):.1f}s after the host"
          f" died (lease {lease:g}s)")


def test_a_partitioned_host_stops_its_copies_its_late_reports_are_ignored_and_it_rejoins(
        lab, start_daemon):
    h1, h2 = lab.add_host("h1"), lab.add_host("h2")
    lease = 4.0
    cut_off = start_daemon(h1, lease=f"{lease:g}s", extra=("--queues", "default,only-h1"))
    _client(lab)
    long_ids = queue.enqueue_many([{"name": "lab.hold", "args": {"seconds": 15}}])
    poll_until(lambda: run_counts(lab)[long_ids[0]] == 1, timeout=30)
    # The second worker runs a short task that ends during the partition: its report is late.
    release = lab.folder / "release"
    short_ids = queue.enqueue_many([{"name": "lab.until", "args": {"path": str(release)}}])
    poll_until(lambda: run_counts(lab)[short_ids[0]] == 1, timeout=30)
    other = start_daemon(h2, lease=f"{lease:g}s", workers=3)
    h1.cut()
    cut_at = time.time()
    release.write_text("end now")  # h1's copy finishes while cut off: it cannot report
    poll_until(lambda: time.time() - cut_at >= 2 * lease, timeout=3 * lease, interval=0.2)
    h1.heal()
    healed_at = time.time()

    def finished():
        return _rows(lab, "SELECT count(*) FROM tasks WHERE status = 'succeeded'")[0][0] == 2
    poll_until(finished, timeout=90, interval=0.2, message=lambda: f"{_status_counts(lab)}")
    lines = runs(lab)
    # Its copy of the long task stopped within the lease of the cut.
    h1_ticks = [at for event, t, host, at in lines if t == long_ids[0] and host == "h1"]
    assert max(h1_ticks) - cut_at <= lease, max(h1_ticks) - cut_at
    assert not any(e == "done" and host == "h1" and t == long_ids[0]
                   for e, t, host, _ in lines)
    for task_id in long_ids + short_ids:
        found = queue.get_task(task_id)
        assert found["status"] == "succeeded"
        assert found["worker"].startswith("h2:"), found  # ran elsewhere; the late report lost
        assert found["result"] == {"host": "h2"}
    # The short task's copy on h1 did finish: its report came late and changed nothing.
    assert any(e == "done" and host == "h1" and t == short_ids[0] for e, t, host, _ in lines)
    # It rejoins: a queue only h1 claims is drained after the heal.
    asked_at = time.time()
    again = queue.enqueue("lab.record", queue="only-h1")
    poll_until(lambda: (queue.get_task(again) or {}).get("status") == "succeeded", timeout=60,
               message=lambda: cut_off.log()[-3000:])
    assert cut_off.alive()
    assert "stopped 1 running task(s)" in cut_off.log()
    assert [cut_off.stop(), other.stop()] == [0, 0]
    assert _tracebacks([cut_off, other]) == []
    print(f"\nh1 copy stopped {max(h1_ticks) - cut_at:.1f}s after the cut (lease {lease:g}s);"
          f" h1 ran a task {asked_at - healed_at:.1f}s after the heal within"
          f" {time.time() - asked_at:.1f}s")


def _skewed(seconds: float) -> dict:
    import os

    return {"LAB_CLOCK_SKEW_S": str(seconds),
            "PYTHONPATH": os.pathsep.join([str(SKEW), os.environ.get("PYTHONPATH", "")])}


def test_hosts_whose_clocks_are_ten_minutes_off_cause_no_rescue(lab, start_daemon):
    lease = 3.0
    ahead, behind = lab.add_host("h1"), lab.add_host("h2")
    daemons = [start_daemon(ahead, lease=f"{lease:g}s", env=_skewed(600)),
               start_daemon(behind, lease=f"{lease:g}s", env=_skewed(-600))]
    _client(lab)
    ids = queue.enqueue_many([{"name": "lab.hold", "args": {"seconds": 3 * lease}}
                              for _ in range(4)])
    poll_until(lambda: _status_counts(lab).get("succeeded", 0) == 4, timeout=60,
               interval=0.2, message=lambda: f"{_status_counts(lab)}")
    assert _lost_attempts(lab) == {}
    assert dict(run_counts(lab)) == {t: 1 for t in ids}
    assert {queue.get_task(t)["worker"].split(":")[0] for t in ids} == {"h1", "h2"}
    assert [d.stop() for d in daemons] == [0, 0]


def test_twenty_concurrent_retries_of_one_failed_task_answer_one_200(lab, start_daemon):
    host = lab.add_host("h1")
    server = start_daemon(host, command="serve")
    _client(lab)
    marker = host.folder / "failed-once"
    task_id = queue.enqueue("lab.fail_first", {"marker": str(marker)})
    poll_until(lambda: queue.get_task(task_id)["status"] == "failed", timeout=30)
    base = f"http://{host.address}:8000"
    poll_until(lambda: _get(f"{base}/healthz") == 200, timeout=30)
    start = threading.Barrier(20)
    codes: list[int] = []

    def retry():
        start.wait()
        request = urllib.request.Request(
            f"{base}/api/tasks/{task_id}/retry", data=b"{}", method="POST",
            headers={"Authorization": "Bearer lab-token", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                codes.append(response.status)
        except urllib.error.HTTPError as exc:
            codes.append(exc.code)
    threads = [threading.Thread(target=retry) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] + [409] * 19
    poll_until(lambda: queue.get_task(task_id)["status"] == "succeeded", timeout=30)
    assert run_counts(lab)[task_id] == 2  # the failed run, and once more
    assert server.stop() == 0


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            json.loads(response.read())
            return response.status
    except OSError:
        return 0


def _call(method: str, url: str, body: bytes | None = None) -> tuple[int, dict | str]:
    request = urllib.request.Request(url, data=body, method=method, headers={
        "Authorization": "Bearer lab-token", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def test_while_the_database_is_away_the_api_answers_503_and_sigterm_exits_0(lab, start_daemon):
    host = lab.add_host("h1")
    server = start_daemon(host, command="serve")
    _client(lab)
    task_id = queue.enqueue("lab.fail_first", {"marker": str(host.folder / "m")})
    poll_until(lambda: queue.get_task(task_id)["status"] == "failed", timeout=30)
    base = f"http://{host.address}:8000"
    poll_until(lambda: _get(f"{base}/healthz") == 200, timeout=30)
    lab.stop_postgres()
    calls = [("GET", f"{base}/api/tasks/{task_id}", None), ("GET", f"{base}/api/tasks", None),
             ("POST", f"{base}/api/tasks/{task_id}/cancel", b"{}"),
             ("POST", f"{base}/api/tasks/{task_id}/retry", b"{}"),
             ("POST", f"{base}/api/queues/default/pause", b"{}"),
             ("GET", f"{base}/api/queues", None), ("GET", f"{base}/api/workers", None),
             ("POST", f"{base}/api/tasks", b'{"name": "lab.record"}')]
    answers = {url.rsplit(base, 1)[1]: _call(method, url, body) for method, url, body in calls}
    assert {path: status for path, (status, _) in answers.items()} == {
        path: 503 for path in answers}
    assert all(body["error"] == "database unavailable" for _, body in answers.values())
    assert _call("GET", f"{base}/healthz")[0] == 503
    lab.start_postgres_again()
    poll_until(lambda: _call("GET", f"{base}/healthz")[0] == 200, timeout=60)
    assert _call("POST", f"{base}/api/tasks/{task_id}/retry", b"{}")[0] == 200
    poll_until(lambda: queue.get_task(task_id)["status"] == "succeeded", timeout=60)
    lab.stop_postgres()  # and a SIGTERM while it is away
    assert server.stop() == 0, server.log()[-3000:]
    assert "Traceback" not in server.log()
