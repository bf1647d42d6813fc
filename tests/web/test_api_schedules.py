"""``/api/schedules``: list entries with their slots; run now, pause, resume."""
from __future__ import annotations

from webtools import Api, assert_error

HOURLY = {"name": "echo", "every": "1h", "args": {"x": 1}}


def test_schedules_are_listed_with_their_slots(web_daemon):
    api = Api(web_daemon(schedules=[HOURLY], library={"rescan_interval": 0}).base_url)
    (entry,) = api.get("/api/schedules").json()["schedules"]
    assert {k: entry[k] for k in ("name", "every", "args", "paused", "last_task_id")} == {
        "name": "echo", "every": 3600.0, "args": {"x": 1}, "paused": False,
        "last_task_id": None}
    assert entry["next_slot"] % 3600 == 0


def test_run_enqueues_the_entry_now_and_pause_is_shown(web_daemon):
    api = Api(web_daemon(schedules=[HOURLY], library={"rescan_interval": 0}).base_url)
    paused = api.post("/api/schedules/echo/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert api.get("/api/schedules").json()["schedules"][0]["paused"] is True
    run = api.post("/api/schedules/echo/run")
    assert run.status_code == 201
    task = api.wait_status(run.json()["id"])
    assert task["name"] == "echo" and task["result"] == {"x": 1}
    (entry,) = api.get("/api/schedules").json()["schedules"]
    assert entry["last_task_id"] == task["id"] and entry["last_slot"] <= task["created_at"]
    assert api.post("/api/schedules/echo/resume").json()["paused"] is False


def test_an_unknown_schedule_is_404(web_daemon):
    api = Api(web_daemon(library={"rescan_interval": 0}).base_url)
    assert_error(api.post("/api/schedules/nope/run"), 404)


def test_the_schedules_page_pauses_and_runs_an_entry(tmp_path, monkeypatch):
    import re

    from daemons import write_settings

    from hopper.app import settings as settings_mod
    from hopper.app.web import create_app

    config = write_settings(tmp_path, schedules=[HOURLY], library={"rescan_interval": 0})
    monkeypatch.setenv("HOPPER_CONFIG", str(config))
    app = create_app(settings_mod.load(config))
    client = app.test_client()
    page = client.get("/schedules").get_data(as_text=True)
    assert "every 3600.0 s" in page and "Pause" in page
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    form = {"csrf_token": token}
    assert client.post("/schedules/echo/pause", data=form).status_code == 302
    assert "Resume" in client.get("/schedules").get_data(as_text=True)
    assert app.extensions["hopper"].backend.schedule_marks()["echo"]["paused"] is True
    client.post("/schedules/echo/run", data=form)
    (task,) = app.extensions["hopper"].backend.list(name="echo")
    assert task["args"] == {"x": 1} and task["status"] == "queued"
