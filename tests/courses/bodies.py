"""The courses API's bodies, built from rows, so a test compares a whole response to one of them
and a field added, dropped or renamed fails it."""

from django_scopes import scopes_disabled
from rest_framework.fields import DateTimeField

_WHEN = DateTimeField()


def when(value) -> str | None:
    return None if value is None else _WHEN.to_representation(value)


def stamps(row) -> dict:
    return {"created_at": when(row.created_at), "updated_at": when(row.updated_at)}


def skill_ref(skill) -> dict:
    return {"id": str(skill.id), "slug": skill.slug, "name": skill.name}


def prerequisite_ids(skill) -> list:
    with scopes_disabled():
        return list(skill.prerequisites.values_list("id", flat=True))


def skill_body(skill) -> dict:
    skill.refresh_from_db()
    return {
        **skill_ref(skill),
        "description": skill.description,
        "prerequisites": [str(p) for p in prerequisite_ids(skill)],
        **stamps(skill),
    }


def course_body(course, teachers) -> dict:
    course.refresh_from_db()
    return {
        "id": str(course.id),
        "slug": course.slug,
        "title": course.title,
        "summary": course.summary,
        "is_published": course.published_at is not None,
        "published_at": when(course.published_at),
        "teachers": sorted(user.email for user in teachers),
        "artifact_retention_days": course.artifact_retention_days,
        **stamps(course),
    }


def lesson_body(lesson, skills) -> dict:
    lesson.refresh_from_db()
    return {
        "id": str(lesson.id),
        "course": str(lesson.course_id),
        "title": lesson.title,
        "body": lesson.body,
        "position": lesson.position,
        "skills": [skill_ref(skill) for skill in skills],
        **stamps(lesson),
    }


def exercise_for_learner_body(exercise, skills) -> dict:
    return {
        "title": exercise.title,
        "instructions": exercise.instructions,
        "dataset": exercise.dataset,
        "metric": exercise.metric,
        "min_metric": exercise.min_metric,
        "target_metric": exercise.target_metric,
        "max_score": f"{exercise.max_score:.2f}",
        "param_budget": exercise.param_budget,
        "param_penalty": exercise.param_penalty,
        "max_seconds": exercise.max_seconds,
        "max_epochs": exercise.max_epochs,
        "allowed_kinds": exercise.allowed_kinds,
        "starter_spec": exercise.starter_spec,
        "starter_code": exercise.starter_code,
        "skills": [skill_ref(skill) for skill in skills],
    }


def exercise_body(exercise, skills) -> dict:
    exercise.refresh_from_db()
    return {
        "id": str(exercise.id),
        "course": str(exercise.course_id),
        **exercise_for_learner_body(exercise, skills),
        "allow_spec": exercise.allow_spec,
        "allow_code": exercise.allow_code,
        "solution_code": exercise.solution_code,
        **stamps(exercise),
    }


def assignment_body(assignment) -> dict:
    assignment.refresh_from_db()
    return {
        "id": str(assignment.id),
        "course": str(assignment.course_id),
        "exercise": str(assignment.exercise_id),
        "exercise_title": assignment.exercise.title,
        "opens_at": when(assignment.opens_at),
        "due_at": when(assignment.due_at),
        "closes_at": when(assignment.closes_at),
        "max_attempts": assignment.max_attempts,
        "late_policy": assignment.late_policy,
        "late_penalty": assignment.late_penalty,
        "tutor_solutions_allowed": assignment.tutor_solutions_allowed,
        "scores_shown": assignment.scores_shown,
        "is_published": assignment.published_at is not None,
        "published_at": when(assignment.published_at),
        **stamps(assignment),
    }


def learner_row_body(assignment, *, status, used, best, exercise=None) -> dict:
    """A row of me/assignments/ (`exercise` given: the detail's full exercise instead)."""
    assignment.refresh_from_db()
    course, task = assignment.course, assignment.exercise
    return {
        "id": str(assignment.id),
        "course": {"id": str(course.id), "slug": course.slug, "title": course.title},
        "exercise": exercise
        or {
            "title": task.title,
            "dataset": task.dataset,
            "metric": task.metric,
            "max_score": f"{task.max_score:.2f}",
            "allowed_kinds": task.allowed_kinds,
        },
        "opens_at": when(assignment.opens_at),
        "due_at": when(assignment.due_at),
        "closes_at": when(assignment.closes_at),
        "max_attempts": assignment.max_attempts,
        "late_policy": assignment.late_policy,
        "late_penalty": assignment.late_penalty,
        "status": status,
        "attempts_used": used,
        "attempts_left": max(assignment.max_attempts - used, 0),
        "best_score": best,
    }


def enrollment_body(enrollment) -> dict:
    return {
        "id": str(enrollment.id),
        "course": str(enrollment.course_id),
        "email": enrollment.user.email,
        "full_name": enrollment.user.full_name,
        "created_at": when(enrollment.created_at),
    }


def page(results: list) -> dict:
    return {"count": len(results), "next": None, "previous": None, "results": results}
