"""A job's events: appended and published together (`event_append`), the schema of each event
type's payload, and where they go live (one Channels group per job, named with its tenant).

`EVENT_SCHEMAS` is the contract between the producers (the submit and cancel services, the
lease, the runner) and the consumers (the websocket and events API, static/js/run.js, the
curves and diagnostics), in the manner of Zulip's event_schema.py: tests check every type's
payloads, from real runs included, against it (tests/jobs/test_event_schemas.py). A field added
to a payload is added here, and to docs/jobs.md, in the same change.
"""

from django.db import transaction
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from apps.core.realtime import publish
from apps.jobs.models import Job, JobEvent
from runtime.progress import JSON_SCHEMA as PROGRESS_SCHEMA
from runtime.progress import OUTCOME_SCHEMA


def _object(required: dict, optional: dict | None = None) -> dict:
    """A JSON object with exactly these properties (those in `optional` may be left out)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


_TEXT = {"type": "string"}
_ATTEMPT = {"type": "integer", "minimum": 1}
_MESSAGE = {"message": _TEXT}
_GRADE = _object({"score": _TEXT, "max_score": _TEXT, "feedback": _TEXT})
# The evaluation on the hidden test split (runtime.evaluate); a spec run adds the
# model's size and latency, so further measurements are allowed.
_METRICS = {
    "type": "object",
    "required": [
        "metric",
        "accuracy",
        "per_class_accuracy",
        "confusion_matrix",
        "class_names",
        "test_samples",
        "device",
    ],
    "properties": {
        "metric": _TEXT,
        "accuracy": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "per_class_accuracy": {
            "type": "object",
            "additionalProperties": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        },
        "confusion_matrix": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        },
        "class_names": {"type": "array", "items": _TEXT},
        "test_samples": {"type": "integer", "minimum": 0},
        "device": _TEXT,
        "parameter_count": {"type": "integer", "minimum": 0},
        "model_size_bytes": {"type": "integer", "minimum": 0},
        "latency_seconds_per_sample": {"type": "number", "minimum": 0},
    },
}
# An assignment with hidden test parts: anyone who follows the job reads its events, so the grade
# is withheld there until the due date (the run page and the API show it to those who may see
# it) and only the public part's figures come, when the teacher shows them live.
_GRADE_WITHHELD = _object(
    {"withheld_until": {"type": "string", "format": "date-time"}, "max_score": _TEXT}
)
_PUBLIC_FIGURES = _object(
    {},
    {
        "public": _object(
            {
                "accuracy": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "per_class_accuracy": _METRICS["properties"]["per_class_accuracy"],
                "test_samples": {"type": "integer", "minimum": 0},
            }
        )
    },
)
_FAILURE = {"message": _TEXT, "kind": _TEXT}

EVENT_SCHEMAS: dict[str, dict] = {
    "queued": _object({"submission": {"type": "string", "format": "uuid"}, "attempt": _ATTEMPT}),
    "started": _object({"attempt": _ATTEMPT, "device": _TEXT}),
    "progress": PROGRESS_SCHEMA,
    "cancel_requested": _object({}),
    "attempt_lost": _object({"attempt": _ATTEMPT, "worker": _TEXT, "message": _TEXT}),
    "requeued": _object({"after_attempt": _ATTEMPT}),
    "succeeded": _object(
        {
            **_MESSAGE,
            "outcome": OUTCOME_SCHEMA,
            "grade": {"oneOf": [_GRADE, _GRADE_WITHHELD]},
            "metrics": {"oneOf": [_METRICS, _PUBLIC_FIGURES]},
        }
    ),
    "failed": _object(_FAILURE, {"output": _TEXT}),
    "cancelled": _object(_MESSAGE),
    "timed_out": _object({**_MESSAGE, "kind": {"type": ["string", "null"]}, "output": _TEXT}),
}
_VALIDATORS = {
    kind: Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for kind, schema in EVENT_SCHEMAS.items()
}


class EventPayloadInvalid(ValueError):
    """A payload that does not fit its event type's schema."""


def event_payload_check(*, type: str, payload) -> None:
    """Raise EventPayloadInvalid, saying where and what, unless `payload` fits the schema of
    events of `type`."""
    validator = _VALIDATORS.get(type)
    if validator is None:
        raise EventPayloadInvalid(f"There is no job event type {type!r}.")
    error = best_match(validator.iter_errors(payload))
    if error is not None:
        raise EventPayloadInvalid(
            f"The payload of a {type!r} event is invalid at {error.json_path}: {error.message}"
        )


def group_for_job(tenant_id, job_id) -> str:
    return f"tenant.{tenant_id.hex}.job.{job_id.hex}"


def job_event_publish(*, tenant_id, job_id, message: dict) -> None:
    """Push one stored event to the job's watchers (call after its row is committed).

    The database is the record: a publish that fails (Redis down) is logged and not retried,
    and websocket clients fill any gap from the database by sequence number.
    """
    publish(group=group_for_job(tenant_id, job_id), message={"type": "job.event", "event": message})


def event_append(job: Job, *, type: str, payload: dict | None = None, attempt=None) -> JobEvent:
    """Append the next event to a job whose row the caller holds locked; it is published to the
    job's watchers once the transaction commits (the row is the record, the publish a nudge)."""
    job.last_seq += 1
    Job.objects.filter(id=job.id).update(last_seq=job.last_seq)
    event = JobEvent.objects.create(
        tenant_id=job.tenant_id,
        job=job,
        seq=job.last_seq,
        attempt=job.attempt if attempt is None else attempt,
        type=type,
        payload=payload or {},
    )
    message = event.as_message()
    tenant_id, job_id = job.tenant_id, job.id
    transaction.on_commit(
        lambda: job_event_publish(tenant_id=tenant_id, job_id=job_id, message=message)
    )
    return event
