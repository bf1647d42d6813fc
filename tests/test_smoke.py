"""The daemon starts, runs a task end to end, and stops cleanly."""
from hopper.app import queue


def test_daemon_runs_an_echo_task_and_stops_cleanly(make_daemon, client):
    daemon = make_daemon(workers=1)
    task_id = queue.enqueue("echo", {"hello": "world"})
    done = queue.wait(task_id, timeout=20)
    assert done["status"] == "succeeded"
    assert done["result"] == {"hello": "world"}
    assert daemon.stop() == 0

