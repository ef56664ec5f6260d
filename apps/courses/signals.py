"""What the courses app tells the apps above it (learning records these:
apps/learning/receivers.py; trained_models follows a course's retention:
apps/trained_models/receivers.py). Sent synchronously, inside the request's transaction."""

from django.dispatch import Signal

# A learner opened a lesson (through the API; the lesson page records it itself). kwargs: user,
# lesson.
lesson_viewed = Signal()

# A course's artifact_retention_days changed (sent by course_update). kwargs: course.
course_retention_changed = Signal()
