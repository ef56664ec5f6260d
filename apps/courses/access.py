"""Who may do what with a course: the one rule that APIs, websockets and services share.

Tenant admins teach every course of their tenant; a teacher teaches the courses that list them;
a learner takes the published courses they are enrolled in.
"""

from apps.courses.models import Course, Enrollment
from apps.tenants.access import TenantAccess
from apps.tenants.models import Role


def course_teaches(*, access: TenantAccess, user, course: Course) -> bool:
    if access.allows(Role.ADMIN):
        return True
    return access.allows(Role.TEACHER) and course.teachers.filter(pk=user.pk).exists()


def course_takes(*, user, course: Course) -> bool:
    return course.is_published and Enrollment.objects.filter(course=course, user=user).exists()


def course_sees(*, access: TenantAccess, user, course: Course) -> bool:
    return course_teaches(access=access, user=user, course=course) or course_takes(
        user=user, course=course
    )
