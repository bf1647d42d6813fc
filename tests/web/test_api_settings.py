"""Live settings over HTTP: PATCH workers resizes the pool and rewrites settings.yaml."""
from __future__ import annotations

import yaml
from helpers import poll_until
from webtools import Api, assert_error


def test_patch_workers_resizes_the_pool_and_rewrites_the_file(web_daemon):
    daemon = web_daemon(workers=2)
    # A comment on the workers line must survive the rewrite.
    text = daemon.config.read_text().replace("workers: 2", "workers: 2  # pool size")
    daemon.config.write_text("# Hopper test settings\n" + text)
    api = Api(daemon.base_url)
    for n in (5, 1):
        response = api.patch("/api/settings", json={"workers": n})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["written"] == {"workers": n}
        assert body["comments_preserved"] is True
        # A retiring worker leaves once its idle wait (at most IDLE_POLL_MAX_S) ends and
        # the pool reaps it: seconds when the machine is busy.
        poll_until(lambda n=n: len(api.get("/api/workers").json()) == n, timeout=10,
                   interval=0.05, message=lambda: f"workers: {api.get('/api/workers').json()}")
        on_disk = daemon.config.read_text()
        assert yaml.safe_load(on_disk)["workers"] == n
        assert f"workers: {n}  # pool size" in on_disk
        assert on_disk.startswith("# Hopper test settings\n")
        assert api.get("/api/settings").json()["settings"]["workers"] == n


def test_patch_rejects_bad_worker_counts(web_daemon):
    daemon = web_daemon(workers=1)
    api = Api(daemon.base_url)
    before = daemon.config.read_text()
    maximum = api.get("/api/settings").json()["settings"]["max_workers"]
    for body in ({"workers": 0}, {"workers": maximum + 1}, {"workers": "3"}, {"workers": 2.5},
                 {"workers": True}, {"threads": 8}, {}, [3]):
        assert_error(api.patch("/api/settings", json=body), 400)
    assert_error(api.patch("/api/settings", data=b"{workers: 3",
                           headers={"Content-Type": "application/json"}), 400)
    assert daemon.config.read_text() == before


def test_broken_settings_file_is_reported_and_last_good_kept(web_daemon):
    daemon = web_daemon(workers=1)
    api = Api(daemon.base_url)
    daemon.config.write_text(daemon.config.read_text().replace("workers: 1", "workers: many"))
    body = poll_until(lambda: (lambda b: b if b["error"] else None)(
                          api.get("/api/settings").json()),
                      timeout=5, message="the reload error never showed up")
    assert "workers" in body["error"]["error"]
    assert body["settings"]["workers"] == 1
    assert len(api.get("/api/workers").json()) == 1
    # PATCH repairs the value in place.
    assert api.patch("/api/settings", json={"workers": 2}).status_code == 200
    poll_until(lambda: api.get("/api/settings").json()["error"] is None, timeout=5)
    poll_until(lambda: len(api.get("/api/workers").json()) == 2, timeout=2, interval=0.05)
