"""The pages: the current user's imports, and a form that starts one."""
from __future__ import annotations

import re

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from app.models import ImportJob, db
from hopper import QueueUnavailable, enqueue, list_tasks

bp = Blueprint("imports", __name__)

_USER = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def current_user() -> str:
    """The user named by ``?user=``, else the ``user`` cookie, else ``guest``."""
    user = request.args.get("user") or request.cookies.get("user") or "guest"
    return user if _USER.match(user) else "guest"


@bp.get("/")
def jobs():
    """The current user's imports: Hopper's tasks tagged ``user:<name>``, with their jobs."""
    user = current_user()
    try:
        tasks = list_tasks(tags=[f"user:{user}"], limit=50)
    except QueueUnavailable as exc:
        return f"Hopper's queue cannot be reached, try again later: {exc}", 503
    job_ids = [t["args"].get("job_id") for t in tasks]
    found = {j.id: j
             for j in db.session.scalars(db.select(ImportJob).where(ImportJob.id.in_(job_ids)))}
    rows = [(t, found.get(t["args"].get("job_id"))) for t in tasks]
    response = current_app.make_response(render_template(
        "jobs.html", user=user, rows=rows, hopper_url=current_app.config["HOPPER_URL"]))
    response.set_cookie("user", user, samesite="Lax")
    return response


@bp.post("/imports")
def start_import():
    """Record a pending job and enqueue its import; 503 if Hopper's database is down."""
    user = current_user()
    source = (request.form.get("source") or "").strip()
    if not source:
        return "source: the folder to import is required", 400
    job = ImportJob(user=user, source=source)
    db.session.add(job)
    db.session.commit()
    try:
        job.task_id = enqueue("media.import", {"job_id": job.id}, tags=[f"user:{user}", "import"],
                              meta={"source": source})
    except QueueUnavailable as exc:
        job.status, job.error = "failed", f"not queued: {exc}"
        db.session.commit()
        return f"The import could not be queued, try again later: {exc}", 503
    db.session.commit()
    return redirect(url_for("imports.jobs", user=user), code=303)
