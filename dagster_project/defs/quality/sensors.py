"""The data engineers' alerts: a run-failure sensor, and a sensor that reads the checks of
every finished run and reports the failed ones (errors in full, warnings as a summary).

Both are on by default. They send to the recipients of alerts.yaml who receive
``run_failures`` / ``failed_checks``, over e-mail and Telegram, with the link that opens the
run (``dagster_base_url`` + ``/runs/<id>``), and write a copy of each alert to the outbox.
With no channel (or no alerts.yaml) they only write the copy; a channel that fails is logged
on the sensor's tick and does not stop the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import dagster as dg

from dagster_project.defs.quality.messages import (
    Alert,
    CheckFailure,
    Delivery,
    Redactor,
    deliver,
    failed_checks_alert,
    load_alerts_config,
    run_failure_alert,
)

FINISHED = (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE)
RUNS_PER_TICK = 25  # finished runs read per event type and tick
FIRST_TICK_LOOKBACK_SECONDS = 3600  # a fresh sensor reports runs that finished in the last hour


def send(compose: Callable[[str, Redactor], Alert | None], log: Any) -> Delivery | None:
    """Compose with the configured Dagster URL and the redactor, then deliver."""
    config, problem = load_alerts_config()
    redact = Redactor.from_environment()
    if problem:
        log.warning(redact(problem))
    alert = compose(config.dagster_base_url, redact)
    if alert is None:
        return None
    report = deliver(alert, config, redact=redact)
    for p in report.problems:
        log.warning(p)
    log.info(f"{alert.subject}: {report.summary()}")
    return report


# -- run failures -----------------------------------------------------------------------------
def _error_text(error: Any) -> str:
    """An error's message and its causes' messages, without the stack."""
    parts = []
    while error is not None and len(parts) < 4:
        parts.append(str(getattr(error, "message", "") or "").strip())
        error = getattr(error, "cause", None)
    return "\nCaused by: ".join(p for p in parts if p)


@dg.run_failure_sensor(
    name="run_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Tells the data engineers (alerts.yaml: run_failures) that a run failed, with its link.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    steps = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        steps.append(
            (event.step_key or "?", _error_text(data.error) if data and data.error else event.message or "")
        )
    message = context.failure_event.message or "the run failed"
    send(
        lambda base, redact: run_failure_alert(run.job_name, run.run_id, message, steps, base, redact),
        context.log,
    )


# -- failed checks ----------------------------------------------------------------------------
def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def check_failures(instance: dg.DagsterInstance, run_id: str) -> list[CheckFailure]:
    """The failed check evaluations of one run."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    failures = []
    for record in records:
        event = record.event_log_entry.dagster_event
        evaluation = event.event_specific_data if event else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation) or evaluation.passed:
            continue
        metadata = evaluation.metadata or {}
        count = _value(metadata.get("unexpected_count"))
        sample = _value(metadata.get("sample"))
        failures.append(
            CheckFailure(
                asset=evaluation.asset_key.to_user_string(),
                check=evaluation.check_name,
                severity="ERROR" if evaluation.severity == dg.AssetCheckSeverity.ERROR else "WARN",
                description=evaluation.description or "the check failed",
                unexpected_count=int(count) if isinstance(count, int | float) else None,
                sample=[row for row in sample if isinstance(row, dict)] if isinstance(sample, list) else [],
                blocking=bool(evaluation.blocking),
            )
        )
    failures.sort(key=lambda f: (f.severity != "ERROR", f.asset, f.check))
    return failures


def finished_runs(instance: dg.DagsterInstance, after: int | None) -> list[dg.EventLogRecord]:
    """Run success and failure events after storage id ``after`` (or, with none, of the last
    hour), oldest first, never past what both event types were read up to."""
    since = None if after is not None else time.time() - FIRST_TICK_LOOKBACK_SECONDS
    records: list[dg.EventLogRecord] = []
    caps = []
    for event_type in FINISHED:
        result = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type, after_storage_id=after, after_timestamp=since),
            limit=RUNS_PER_TICK,
            ascending=True,
        )
        records += result.records
        if len(result.records) == RUNS_PER_TICK:
            caps.append(result.records[-1].storage_id)
    cap = min(caps) if caps else None
    return sorted((r for r in records if cap is None or r.storage_id <= cap), key=lambda r: r.storage_id)


@dg.sensor(
    name="failed_check_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Tells the data engineers (alerts.yaml: failed_checks) which checks failed in each finished "
    "run: errors with their unexpected count and sample, warnings as a summary.",
)
def failed_check_alerts(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    after = int(context.cursor) if context.cursor else None
    runs = finished_runs(context.instance, after)
    alerted = 0
    for record in runs:
        run = context.instance.get_run_by_id(record.run_id)
        failures = check_failures(context.instance, record.run_id)
        if run is not None and failures:
            status = run.status.value
            sent = send(
                lambda base, redact, run=run, failures=failures, status=status: failed_checks_alert(
                    run.job_name, run.run_id, status, failures, base, redact
                ),
                context.log,
            )
            alerted += sent is not None
        context.update_cursor(str(record.storage_id))
    return dg.SkipReason(f"{len(runs)} finished run(s) read, {alerted} with failed checks reported")


defs = dg.Definitions(sensors=[run_failure_alerts, failed_check_alerts])
