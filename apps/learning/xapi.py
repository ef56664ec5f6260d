"""Statements as xAPI 1.0.3 JSON, and a JSON Schema of the statement structure to check them.

A stored Statement becomes an xAPI statement: actor an Agent identified by `mailto:` its email,
verb an ADL verb IRI (Aula's own IRI where ADL has none), object an Activity whose id is the
object's page on this platform, result as stored, context with the tenant, course and assignment
as context activities, timestamp and stored in ISO 8601 with a time zone.

The schema follows the xAPI specification (part two, "Statement"): the required properties,
their types, IRIs, language maps, the score's bounds and ISO 8601 durations and timestamps.
It validates what Aula exports and forwards; it is not a full conformance suite.
"""

from __future__ import annotations

from django.conf import settings
from jsonschema import Draft202012Validator, FormatChecker

from apps.learning.models import ObjectType, Statement, Verb

VERSION = "1.0.3"
ADL = "http://adlnet.gov/expapi/verbs/"


def aula_iri(path: str) -> str:
    return f"{settings.XAPI_IRI_BASE.rstrip('/')}/{path.lstrip('/')}"


VERBS: dict[str, str] = {
    Verb.EXPERIENCED: ADL + "experienced",
    Verb.ATTEMPTED: ADL + "attempted",
    Verb.COMPLETED: ADL + "completed",
    Verb.SCORED: ADL + "scored",
    Verb.ASKED: ADL + "asked",
    Verb.RECEIVED_HINT: "",  # no ADL verb: Aula's IRI, filled in by verb_iri()
}

ACTIVITY_TYPES: dict[str, str] = {
    ObjectType.LESSON: "http://adlnet.gov/expapi/activities/lesson",
    ObjectType.ASSIGNMENT: "http://adlnet.gov/expapi/activities/assessment",
    ObjectType.RUN: "http://adlnet.gov/expapi/activities/performance",
    ObjectType.TUTOR: "http://adlnet.gov/expapi/activities/interaction",
}


def verb_iri(verb: str) -> str:
    return VERBS.get(verb) or aula_iri(f"xapi/verbs/{verb}")


def _activity(kind: str, object_id: str, name: str | None = None) -> dict:
    activity: dict = {"objectType": "Activity", "id": aula_iri(f"xapi/{kind}/{object_id}")}
    if name is not None:
        activity["definition"] = {"name": {"en": name}}
        if kind in ACTIVITY_TYPES:
            activity["definition"]["type"] = ACTIVITY_TYPES[kind]
    return activity


def statement_json(statement: Statement, *, actor_email: str, tenant_slug: str) -> dict:
    """The xAPI statement of a stored Statement (the caller passes what it already has)."""
    grouping = [_activity("tenant", tenant_slug)]
    if statement.course_id:
        grouping.append(_activity("course", str(statement.course_id)))
    context: dict = {"platform": "Aula", "contextActivities": {"grouping": grouping}}
    if statement.assignment_id and statement.object_type != ObjectType.ASSIGNMENT:
        context["contextActivities"]["parent"] = [
            _activity("assignment", str(statement.assignment_id))
        ]
    doc = {
        "id": str(statement.uuid),
        "actor": {"objectType": "Agent", "mbox": f"mailto:{actor_email}"},
        "verb": {
            "id": verb_iri(statement.verb),
            "display": {"en": Verb(statement.verb).label},
        },
        "object": _activity(statement.object_type, statement.object_id, statement.object_name),
        "context": context,
        "timestamp": statement.timestamp.isoformat(),
        "stored": statement.stored.isoformat(),
        "version": VERSION,
    }
    if statement.result:
        doc["result"] = statement.result
    return doc


def duration(seconds: float) -> str:
    """ISO 8601 duration, to the hundredth of a second (as xAPI asks)."""
    return f"PT{round(max(0.0, seconds), 2):g}S"


# --- The schema -------------------------------------------------------------------------------

_IRI = {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+$"}
_LANGUAGE_MAP = {
    "type": "object",
    "minProperties": 1,
    "propertyNames": {"pattern": r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$"},
    "additionalProperties": {"type": "string"},
}
_EXTENSIONS = {"type": "object", "propertyNames": {"pattern": _IRI["pattern"]}}
_UUID = {
    "type": "string",
    "pattern": r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
}
# ISO 8601 with a time zone (xAPI requires one on export).
_TIMESTAMP = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
}
_DURATION = {
    "type": "string",
    "pattern": r"^P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$",
}
_ACTIVITY = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "objectType": {"const": "Activity"},
        "id": _IRI,
        "definition": {
            "type": "object",
            "properties": {
                "name": _LANGUAGE_MAP,
                "description": _LANGUAGE_MAP,
                "type": _IRI,
                "extensions": _EXTENSIONS,
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
_AGENT = {
    "type": "object",
    "required": ["mbox"],
    "properties": {
        "objectType": {"const": "Agent"},
        "name": {"type": "string"},
        "mbox": {"type": "string", "pattern": r"^mailto:[^@\s]+@[^@\s]+$"},
    },
    "additionalProperties": False,
}
_SCORE = {
    "type": "object",
    "properties": {
        "scaled": {"type": "number", "minimum": -1, "maximum": 1},
        "raw": {"type": "number"},
        "min": {"type": "number"},
        "max": {"type": "number"},
    },
    "additionalProperties": False,
    # raw lies between min and max: checked in statement_problems (JSON Schema cannot compare).
}
_RESULT = {
    "type": "object",
    "properties": {
        "score": _SCORE,
        "success": {"type": "boolean"},
        "completion": {"type": "boolean"},
        "response": {"type": "string"},
        "duration": _DURATION,
        "extensions": _EXTENSIONS,
    },
    "additionalProperties": False,
}
STATEMENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "xAPI 1.0.3 statement",
    "type": "object",
    "required": ["id", "actor", "verb", "object", "timestamp"],
    "properties": {
        "id": _UUID,
        "actor": _AGENT,
        "verb": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": _IRI, "display": _LANGUAGE_MAP},
            "additionalProperties": False,
        },
        "object": _ACTIVITY,
        "result": _RESULT,
        "context": {
            "type": "object",
            "properties": {
                "registration": _UUID,
                "platform": {"type": "string"},
                "language": {"type": "string"},
                "contextActivities": {
                    "type": "object",
                    "propertyNames": {"enum": ["parent", "grouping", "category", "other"]},
                    "additionalProperties": {"type": "array", "items": _ACTIVITY, "minItems": 1},
                },
                "extensions": _EXTENSIONS,
            },
            "additionalProperties": False,
        },
        "timestamp": _TIMESTAMP,
        "stored": _TIMESTAMP,
        "version": {"type": "string", "pattern": r"^1\.0(\.\d+)?$"},
    },
    "additionalProperties": False,
}

_validator = Draft202012Validator(STATEMENT_SCHEMA, format_checker=FormatChecker())


def statement_problems(doc: dict) -> list[str]:
    """What is wrong with an xAPI statement, each as "where: what" (empty: it is valid)."""
    problems = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(statement)'}: {error.message}"
        for error in sorted(_validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    ]
    score = (doc.get("result") or {}).get("score") or {}
    raw, low, high = score.get("raw"), score.get("min"), score.get("max")
    if raw is not None and low is not None and raw < low:
        problems.append("result/score/raw: below result/score/min")
    if raw is not None and high is not None and raw > high:
        problems.append("result/score/raw: above result/score/max")
    if low is not None and high is not None and low > high:
        problems.append("result/score/min: above result/score/max")
    return problems
