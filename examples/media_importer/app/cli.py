"""``flask --app app import FOLDER --user NAME``: the same import from the command line."""
from __future__ import annotations

import click

from app.models import ImportJob, db
from hopper import QueueUnavailable, enqueue, wait


@click.command("import")
@click.argument("source")
@click.option("--user", default="guest", show_default=True, help="whose import it is")
@click.option("--wait", "wait_s", type=float, default=None, metavar="SECONDS",
              help="wait for the import to finish and print the job's status")
def import_command(source: str, user: str, wait_s: float | None) -> None:
    """Record an import job for SOURCE and enqueue it (runs inside the app context)."""
    job = ImportJob(user=user, source=source)
    db.session.add(job)
    db.session.commit()
    try:
        job.task_id = enqueue("media.import", {"job_id": job.id},
                              tags=[f"user:{user}", "import"], meta={"source": source})
    except QueueUnavailable as exc:
        job.status, job.error = "failed", f"not queued: {exc}"
        db.session.commit()
        raise click.ClickException(f"the import could not be queued: {exc}") from None
    db.session.commit()
    click.echo(f"job {job.id} queued as task {job.task_id}")
    if wait_s is not None:
        wait(job.task_id, timeout=wait_s)
        db.session.refresh(job)
        click.echo(f"job {job.id} {job.status}" + (f": {job.files} files" if job.files else ""))
