"""Reading learning records: statements by learner and course, mastery, the mastery grid of a
course, and a learner's recommended next step."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.courses.models import Enrollment, Lesson, Skill
from apps.courses.selectors import AssignmentStatus, course_list_for_learner
from apps.jobs.selectors import assignment_list_for_learner, private_part_hidden_q
from apps.learning.bkt import mastery_percent
from apps.learning.models import (
    GradeNotice,
    Mastery,
    RunDiagnosis,
    SkillParams,
    Statement,
    Verb,
)


def statement_list(
    *, tenant, learner=None, course=None, verb=None, after_id=None, withheld_now=None
) -> QuerySet:
    """The tenant's statements, oldest first, of a learner, a course, a verb, after an id.
    `withheld_now`: for a learner reading their own, leave out the "scored" statements of grades
    withheld from them at that time (until the due date: they quote the private part's score;
    apps.jobs.selectors.grade_withheld_until, as a query). They appear from the due date on."""
    rows = Statement.objects.filter(tenant=tenant).select_related("actor")
    if withheld_now is not None:
        rows = rows.exclude(Q(verb=Verb.SCORED) & private_part_hidden_q(now=withheld_now))
    if learner is not None:
        rows = rows.filter(actor=learner)
    if course is not None:
        rows = rows.filter(course=course)
    if verb is not None:
        rows = rows.filter(verb=verb)
    if after_id is not None:
        rows = rows.filter(id__gt=after_id)
    return rows.order_by("id")


@dataclass(frozen=True)
class SkillMastery:
    skill: Skill
    probability: float
    observations: int

    @property
    def mastered(self) -> bool:
        return self.probability >= settings.MASTERY_THRESHOLD

    @property
    def percent(self) -> int:
        return mastery_percent(self.probability)


def _priors(skill_ids) -> dict:
    fitted = dict(SkillParams.objects.filter(skill_id__in=skill_ids).values_list("skill", "prior"))
    return {s: fitted.get(s, SkillParams.DEFAULTS["prior"]) for s in skill_ids}


def course_list_taken(*, tenant, user) -> QuerySet:
    return course_list_for_learner(tenant=tenant, user=user)


def skill_list_of_courses(courses) -> QuerySet:
    """The skills the courses' lessons teach or exercises practise."""
    return (
        Skill.objects.filter(Q(lessons__course__in=courses) | Q(exercises__course__in=courses))
        .distinct()
        .order_by("name")
    )


def mastery_list(*, tenant, user, skills=None) -> list[SkillMastery]:
    """The learner's mastery of each skill of their courses (the skill's prior when they have
    no observation of it yet), by skill name."""
    if skills is None:
        skills = list(skill_list_of_courses(course_list_taken(tenant=tenant, user=user)))
    ids = [s.pk for s in skills]
    rows = {m.skill_id: m for m in Mastery.objects.filter(user=user, skill_id__in=ids).order_by()}
    priors = _priors(ids)
    return [
        SkillMastery(
            skill=s,
            probability=rows[s.pk].probability if s.pk in rows else priors[s.pk],
            observations=rows[s.pk].observations if s.pk in rows else 0,
        )
        for s in skills
    ]


@dataclass(frozen=True)
class MasteryGrid:
    skills: list[Skill]
    learners: list  # users
    # cells[learner index][skill index]: probability, or None where there is no observation
    cells: list[list[float | None]]


def mastery_grid_get(*, course) -> MasteryGrid:
    """Learners of the course by its skills (the teacher's heat map): two queries."""
    skills = list(skill_list_of_courses([course]))
    learners = [
        e.user
        for e in Enrollment.objects.filter(course=course)
        .select_related("user")
        .order_by("user__email")
    ]
    values = {
        (m.user_id, m.skill_id): m.probability
        for m in Mastery.objects.filter(
            skill__in=skills, user__in=[u.pk for u in learners]
        ).order_by()
    }
    cells = [[values.get((u.pk, s.pk)) for s in skills] for u in learners]
    return MasteryGrid(skills=skills, learners=learners, cells=cells)


@dataclass(frozen=True)
class Recommendation:
    sentence: str
    skill: Skill | None = None
    target_id: object = None  # the assignment's or the lesson's (its URL: apps/learning/links.py)
    target_title: str | None = None
    kind: str | None = None  # "assignment" | "lesson"


def _open_assignment_for(skill, *, tenant, user):
    """The learner's assignment that practises the skill and takes a submission now (the
    window and attempts rule of the submission service, as the dashboard shows it)."""
    assignment = (
        assignment_list_for_learner(user=user, tenant=tenant)
        .filter(
            status__in=[AssignmentStatus.OPEN, AssignmentStatus.LATE],
            attempts_left__gt=0,
            exercise__skills=skill,
        )
        .first()
    )
    if assignment is None:
        return None
    return assignment.pk, assignment.exercise.title


def _lesson_for(skill, courses):
    lesson = (
        Lesson.objects.filter(course__in=courses, skills=skill).order_by("course", "position")
    ).first()
    if lesson is None:
        return None
    return lesson.pk, lesson.title


def _perfect_latest(*, user, skill_ids) -> set:
    """The skills whose latest graded work of the learner (the newest graded submission to an
    exercise practising the skill) is at full marks."""
    from apps.jobs.models import Grade

    rows = (
        Grade.objects.filter(
            submission__learner=user, submission__assignment__exercise__skills__in=skill_ids
        )
        .order_by("-submission__created_at", "-pk")
        .values_list("submission__assignment__exercise__skills", "score", "max_score")
    )
    latest: dict = {}
    for skill_id, score, top in rows:
        latest.setdefault(skill_id, top > 0 and score >= top)
    return {skill_id for skill_id, perfect in latest.items() if perfect}


def recommendation_get(
    *, tenant, user, mastery: list[SkillMastery] | None = None
) -> Recommendation:
    """The next step: for the lowest-mastery skill whose prerequisites are all mastered, the open
    assignment that practises it (soonest due), else the lesson that teaches it. A skill whose
    latest graded work is at full marks counts as mastered here, whatever its probability says
    (one perfect score does not move BKT's estimate past the threshold): it is never the one
    to practise, and it opens the skills that need it."""
    courses = list(course_list_taken(tenant=tenant, user=user))
    if mastery is None:
        mastery = mastery_list(
            tenant=tenant, user=user, skills=list(skill_list_of_courses(courses))
        )
    if not mastery:
        return Recommendation("Your courses have no skills to practise yet.")
    known = {m.skill.pk: m for m in mastery}
    needs: dict = {}
    for skill_id, prerequisite_id in Skill.prerequisites.through.objects.filter(
        from_skill_id__in=list(known)
    ).values_list("from_skill_id", "to_skill_id"):
        needs.setdefault(skill_id, []).append(prerequisite_id)
    # Prerequisites outside the learner's courses count too: their mastery is read as well.
    outside = {p for ps in needs.values() for p in ps} - known.keys()
    if outside:
        others = mastery_list(
            tenant=tenant, user=user, skills=list(Skill.objects.filter(pk__in=outside))
        )
        known |= {m.skill.pk: m for m in others}
    perfect = _perfect_latest(user=user, skill_ids=list(known))

    def done(m: SkillMastery) -> bool:
        return m.mastered or m.skill.pk in perfect

    ready = [
        m for m in mastery if not done(m) and all(done(known[p]) for p in needs.get(m.skill.pk, ()))
    ]
    if not ready:
        if all(done(m) for m in mastery):
            return Recommendation("You have mastered every skill of your courses: well done.")
        return Recommendation(
            "Every skill left needs a prerequisite you have not mastered yet: ask your teacher."
        )
    chosen = min(ready, key=lambda m: (m.probability, m.skill.name))
    found = _open_assignment_for(chosen.skill, tenant=tenant, user=user)
    kind = "assignment"
    if found is None:
        found, kind = _lesson_for(chosen.skill, courses), "lesson"
    prerequisites = [known[p].skill.name for p in needs.get(chosen.skill.pk, ())]
    because = (
        f"you have mastered its prerequisites ({', '.join(sorted(prerequisites))})"
        if prerequisites
        else "it has no prerequisites"
    )
    percent = f"{chosen.percent}%"
    if found is None:
        return Recommendation(
            f"{chosen.skill.name} is your weakest skill ({percent} mastered) and {because}, "
            "but your courses have nothing open for it yet.",
            skill=chosen.skill,
        )
    target_id, title = found
    verb = "Practise it with" if kind == "assignment" else "Read"
    return Recommendation(
        f"{verb} “{title}”: {chosen.skill.name} is your weakest skill ({percent} mastered) "
        f"and {because}.",
        skill=chosen.skill,
        target_id=target_id,
        target_title=title,
        kind=kind,
    )


def _hint_lesson(hint_skills, lessons, own: set[str]):
    """The lesson for one hint: of the course's lessons that teach one of the hint's skills, the
    one teaching the most preferred of them, then the one teaching the most of the exercise's
    own skills (`own`), then the first in the course. So a CNN exercise's "training" hint goes
    to the CNN lesson, not to the XOR lesson that comes first and also teaches training."""
    best, best_key = None, None
    for lesson in lessons:
        taught = {s.slug for s in lesson.skills.all()}
        shared = taught & own
        preference = next((i for i, s in enumerate(hint_skills) if s in taught), None)
        if preference is None:
            continue
        key = (preference, -len(shared), lesson.position)
        if best_key is None or key < best_key:
            best, best_key = lesson, key
    return best


def run_hint_list(*, job, course) -> list[dict]:
    """The run's diagnosis hints, each with `lesson` (the course's Lesson for it,
    `_hint_lesson`) or None."""
    diagnosis = RunDiagnosis.objects.filter(job=job).first()
    if diagnosis is None or not diagnosis.hints:
        return []
    own = set(job.submission.assignment.exercise.skills.values_list("slug", flat=True))
    wanted = {slug for hint in diagnosis.hints for slug in hint["skills"]}
    lessons = list(
        Lesson.objects.filter(course=course, skills__slug__in=wanted)
        .distinct()
        .prefetch_related("skills")
        .order_by("position")
    )
    hints = []
    for hint in diagnosis.hints:
        hints.append({**hint, "lesson": _hint_lesson(hint["skills"], lessons, own)})
    return hints


def grade_notice_list_open(*, tenant, user, now=None) -> QuerySet:
    """The user's notices of grades a regrade changed, not yet dismissed, newest first; not
    those of a grade withheld from them until the due date (a notice quotes the scores), which
    appear once it has passed: apps.jobs.selectors.grade_withheld_until, as a query."""
    now = now or timezone.now()
    withheld = Q(submission__grade__metrics__has_key="public") & private_part_hidden_q(
        now=now, assignment="submission__assignment__"
    )
    return (
        GradeNotice.objects.filter(
            tenant_id=tenant.id, learner_id=user.pk, dismissed_at__isnull=True
        )
        .exclude(withheld)
        .order_by("-created_at", "-id")
    )
