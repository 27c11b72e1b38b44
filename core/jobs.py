"""Scheduled jobs (``crm jobs run``): each job runs at most once per day; running the command
twice does the work once. Cron or a systemd timer calls the command; no scheduler runs inside
the app servers, so several of them behind a load balancer never repeat a job."""
from sqlalchemy.exc import IntegrityError

from crm.core.tables import job_runs


def all_jobs(runtime):
    return [job for _, jobs in runtime.plugins.call_each("crm_jobs") for job in jobs]


def run_due(runtime, only=()):
    """Run every job not yet run today; yields (job name, outcome)."""
    for job in all_jobs(runtime):
        if only and job.name not in only:
            continue
        yield job.name, run_once(runtime, job)


def run_once(runtime, job):
    today = runtime.clock().date()
    with runtime.transaction() as records:
        try:
            with records.session.begin_nested():
                records.session.execute(job_runs.insert().values(job=job.name, run_date=today, started_at=records.now()))
        except IntegrityError:
            return "already ran today"
        result = job.run(records)
        records.session.execute(job_runs.update().where(job_runs.c.job == job.name, job_runs.c.run_date == today)
                                .values(finished_at=records.now(), result=result if isinstance(result, (dict, list, int, str)) else None))
    return f"done ({result})" if result is not None else "done"
