"""What the courses app tells the apps above it (learning records these:
apps/learning/receivers.py). Sent synchronously, inside the request's transaction."""

from django.dispatch import Signal

# A learner opened a lesson (through the API; the lesson page records it itself). kwargs: user,
# lesson.
lesson_viewed = Signal()
