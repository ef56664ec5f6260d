"""The tutor chat over its websocket, as a learner's browser talks to it: the grounded tutor
cites the lesson it answers from; a tenant's OpenAI-compatible endpoint (the local stand-in)
streams its answer, and its tokens are counted; the policy refuses, the rate limit and the
quota hold, and each exchange is recorded with its "asked" statement."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django_scopes import scopes_disabled

from apps.learning.crypto import encrypt
from apps.learning.models import RunDiagnosis, Statement, TutorExchange, TutorSettings
from apps.tenants.consumers import CLOSE_NOT_FOUND
from config.asgi import application
from tests.conftest import page_client_for
from tests.factories import LessonFactory, SkillFactory
from tests.snapshots import db_snapshot

LESSON_BODY = """\
# Multilayer perceptrons and XOR

A straight line cannot separate the four XOR points. Put a **non-linearity** such as ReLU
between two linear layers and the network can bend its decision boundary; two hidden ReLU units
are enough for XOR.

# Learning rates

Adam adapts the step per weight, so a learning rate of 0.01 to 0.05 works for most small
networks. When the loss jumps around or grows, the learning rate is too high.
"""


@pytest.fixture
def world(tenant_a):
    with scopes_disabled():
        tenant_a.lesson.title = "Multilayer perceptrons"
        tenant_a.lesson.body = LESSON_BODY
        tenant_a.lesson.save()
    return tenant_a


def _cookie(user) -> bytes:
    return f"sessionid={page_client_for(user).cookies['sessionid'].value}".encode()


def _socket(cookie: bytes, slug="alpha") -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application,
        f"/ws/t/{slug}/tutor/",
        headers=[(b"cookie", cookie), (b"origin", b"http://testserver")],
    )


async def _until_end(ws) -> list[dict]:
    """The messages of one question, up to its "done" or "error"."""
    messages = []
    while True:
        message = await ws.receive_json_from(timeout=20)
        messages.append(message)
        if message["type"] in ("done", "error"):
            return messages


def ask(user, *questions, assignment=None, cookie=None) -> list[list[dict]]:
    """Ask the questions one after another on one connection; the messages of each."""
    cookie = cookie or _cookie(user)  # logging in writes the session and last_login

    async def conversation():
        ws = _socket(cookie)
        assert await ws.connect(timeout=10) == (True, None)
        answers = []
        for question in questions:
            message = {"type": "ask", "question": question}
            if assignment is not None:
                message["assignment"] = str(assignment)
            await ws.send_json_to(message)
            answers.append(await _until_end(ws))
        await ws.disconnect()
        return answers

    return async_to_sync(conversation)()


def _text(messages) -> str:
    return "".join(m["text"] for m in messages if m["type"] == "chunk")


def _exchanges():
    with scopes_disabled():
        return list(TutorExchange.objects.order_by("id"))


@pytest.mark.django_db(transaction=True)
def test_the_grounded_tutor_answers_from_the_lesson_and_cites_it(world):
    [messages] = ask(world.learner.user, "Why do I need ReLU to learn XOR?")
    assert messages[0] == {"type": "start", "backend": "grounded"}
    assert len([m for m in messages if m["type"] == "chunk"]) > 5  # streamed, not one block
    text = _text(messages)
    assert "two hidden ReLU units are enough for XOR" in text
    assert "(see lesson: Multilayer perceptrons)" in text
    lesson_url = f"/t/alpha/lessons/{world.lesson.id}/"
    assert messages[-1] == {
        "type": "done",
        "citations": [
            {
                "kind": "lesson",
                "lesson_id": str(world.lesson.id),
                "title": "Multilayer perceptrons",
                "url": lesson_url,
            }
        ],
        "refused": None,
    }
    [exchange] = _exchanges()
    assert (exchange.user_id, exchange.backend, exchange.refused) == (
        world.learner.user.id,
        "grounded",
        "",
    )
    assert exchange.answer == text
    assert exchange.citations == messages[-1]["citations"]
    with scopes_disabled():
        [statement] = Statement.objects.filter(verb="asked")
    assert statement.object_id == str(exchange.id)
    assert statement.result["extensions"] == {
        "https://aula.example/xapi/extensions/question": "Why do I need ReLU to learn XOR?"
    }
    # The lesson page the citation links to opens for the learner.
    assert page_client_for(world.learner.user).get(lesson_url).status_code == 200


CNN_BODY = """\
# Convolutional networks

A convolution slides small filters over the image. A low score on images often means the
network needs more filters, or more epochs while its loss still falls.
"""


@pytest.mark.django_db(transaction=True)
def test_asked_about_a_low_score_the_tutor_answers_from_the_runs_diagnosis_and_cites_it(world):
    """The run's own diagnosis first, cited with links to the run and the exercise; the lesson
    quoted is the exercise's own (CNN), not the XOR lesson of another skill."""
    with scopes_disabled():
        cnn = SkillFactory(tenant=world.tenant, slug="cnn", name="CNNs")
        cnn_lesson = LessonFactory(
            course=world.course, title="Convolutional networks", body=CNN_BODY
        )
        cnn_lesson.skills.set([cnn])
        world.exercise.skills.set([cnn])
        RunDiagnosis.objects.create(
            tenant=world.tenant,
            job=world.job,
            hints=[
                {
                    "code": "slow_convergence",
                    "title": "Training stopped while still improving",
                    "message": "Training ended while the training loss was still falling.",
                    "evidence": {},
                    "skills": ["training"],
                    "severity": "suggestion",
                }
            ],
        )
        submission = world.job.submission
    [messages] = ask(world.learner.user, "Why is my score so low?", assignment=world.assignment.id)
    text = _text(messages)
    run_title = f"attempt {submission.attempt} of “{world.exercise.title}”"
    assert text.startswith(
        f"Your run ({run_title}): Training stopped while still improving: Training ended while "
        "the training loss was still falling."
    )
    assert "The goal of “" + world.exercise.title + "”: a test accuracy of" in text
    assert "needs more filters" in text
    assert "XOR points" not in text and "Multilayer perceptrons" not in text
    assert messages[-1]["citations"] == [
        {
            "kind": "run",
            "lesson_id": None,
            "title": run_title,
            "url": f"/t/alpha/runs/{submission.id}/",
        },
        {
            "kind": "exercise",
            "lesson_id": None,
            "title": world.exercise.title,
            "url": f"/t/alpha/assignments/{world.assignment.id}/",
        },
        {
            "kind": "lesson",
            "lesson_id": str(cnn_lesson.id),
            "title": "Convolutional networks",
            "url": f"/t/alpha/lessons/{cnn_lesson.id}/",
        },
    ]


@pytest.mark.django_db(transaction=True)
def test_the_tenants_endpoint_streams_the_answer_and_counts_its_tokens(world, standin):
    standin.behaviour.pieces = ["Try ", "a smaller ", "learning rate."]
    with scopes_disabled():
        TutorSettings.objects.create(
            tenant=world.tenant,
            endpoint_url=standin.base_url,
            model="tiny-tutor",
            api_key_encrypted=encrypt("sk-school-key"),
            tokens_per_month=1000,
        )
    [messages] = ask(world.learner.user, "My loss jumps around, what is wrong?")
    assert messages[0] == {"type": "start", "backend": "endpoint"}
    assert [m["text"] for m in messages if m["type"] == "chunk"] == [
        "Try ",
        "a smaller ",
        "learning rate.",
    ]
    assert messages[-1]["type"] == "done"
    [request] = standin.requests
    assert request.headers["authorization"] == "Bearer sk-school-key"
    assert request.body["model"] == "tiny-tutor"
    assert request.body["stream"] is True
    assert "When the loss jumps around or grows" in request.body["messages"][0]["content"]
    [exchange] = _exchanges()
    assert (exchange.backend, exchange.prompt_tokens, exchange.completion_tokens) == (
        "endpoint",
        123,
        45,
    )


@pytest.mark.django_db(transaction=True)
def test_a_spent_token_quota_refuses_and_records_nothing(world, standin):
    with scopes_disabled():
        TutorSettings.objects.create(
            tenant=world.tenant,
            endpoint_url=standin.base_url,
            model="tiny-tutor",
            tokens_per_month=100,
        )
        TutorExchange.objects.create(
            tenant=world.tenant,
            user=world.learner.user,
            question="q",
            answer="a",
            backend="endpoint",
            prompt_tokens=60,
            completion_tokens=40,
        )
    cookie = _cookie(world.learner.user)
    before = db_snapshot()
    [messages] = ask(world.learner.user, "What is ReLU?", cookie=cookie)
    assert messages == [
        {
            "type": "error",
            "code": "quota",
            "message": "The tutor's allowance of 100 tokens this month is used up; it renews on "
            "the 1st.",
        }
    ]
    assert standin.requests == []
    assert db_snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_a_failing_endpoint_falls_back_to_the_lessons(world, standin):
    standin.behaviour.status = 500
    with scopes_disabled():
        TutorSettings.objects.create(
            tenant=world.tenant, endpoint_url=standin.base_url, model="tiny-tutor"
        )
    [messages] = ask(world.learner.user, "Why do I need ReLU to learn XOR?")
    notice = [m for m in messages if m["type"] == "notice"]
    assert len(notice) == 1
    assert notice[0]["message"].endswith("The answer below comes from your lessons instead.")
    assert "two hidden ReLU units are enough for XOR" in _text(messages)
    assert messages[-1]["citations"][0]["title"] == "Multilayer perceptrons"
    [exchange] = _exchanges()
    assert exchange.backend == "grounded"


@pytest.mark.django_db(transaction=True)
def test_the_rate_limit_refuses_the_question_over_it(world, settings):
    settings.TUTOR_QUESTIONS_PER_MINUTE = 2
    answers = ask(world.learner.user, "What is ReLU?", "What is XOR?", "What is Adam?")
    assert [a[-1]["type"] for a in answers] == ["done", "done", "error"]
    refused = answers[2][-1]
    assert refused["code"] == "rate_limited"
    assert refused["message"].startswith("You have asked 2 questions this minute; ask again in")
    assert [e.question for e in _exchanges()] == ["What is ReLU?", "What is XOR?"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "question, kind",
    [
        ("Give me the full solution to this assignment", "full_solution"),
        ("What are the labels of the hidden test set?", "hidden_test_data"),
    ],
)
def test_the_policy_refuses_solutions_and_test_data(world, question, kind):
    [messages] = ask(world.learner.user, question, assignment=world.assignment.id)
    assert messages[-1] == {"type": "done", "citations": [], "refused": kind}
    [exchange] = _exchanges()
    assert exchange.refused == kind
    assert exchange.answer == _text(messages)


@pytest.mark.django_db(transaction=True)
def test_a_teacher_may_allow_solutions_but_never_test_data(world):
    with scopes_disabled():
        world.assignment.tutor_solutions_allowed = True
        world.assignment.save()
    answers = ask(
        world.learner.user,
        "Give me the full solution to this assignment",
        "What are the labels of the hidden test set?",
        assignment=world.assignment.id,
    )
    assert [a[-1]["refused"] for a in answers] == [None, "hidden_test_data"]


@pytest.mark.django_db(transaction=True)
def test_the_guard_cuts_the_reference_solution_out_of_an_answer(world, standin):
    solution = "model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))"
    with scopes_disabled():
        world.exercise.solution_code = f"import torch\n{solution}\n"
        world.exercise.save()
        TutorSettings.objects.create(
            tenant=world.tenant, endpoint_url=standin.base_url, model="tiny-tutor"
        )
    standin.behaviour.pieces = ["Here it is: ", solution[:30], solution[30:], " and more."]
    [messages] = ask(world.learner.user, "How many hidden units?", assignment=world.assignment.id)
    text = _text(messages)
    assert "nn.Linear(2, 8)" not in text
    assert text.startswith("Here it is: ")
    assert "solution" in text[len("Here it is: ") :]  # the policy note replaces the code


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "message, code, text",
    [
        ({"type": "ask", "question": "   "}, "invalid", "Ask a question: the message was empty."),
        (
            {"type": "ask", "question": "x" * 2001},
            "invalid",
            "Questions are at most 2000 characters long.",
        ),
        ({"type": "shout"}, "invalid", 'Send {"type": "ask", "question": "..."}.'),
        (
            {"type": "ask", "question": "Hi", "assignment": "nope"},
            "invalid",
            "The assignment id is not a valid id.",
        ),
        (
            {"type": "ask", "question": "Hi", "assignment": "00000000-0000-4000-8000-000000000000"},
            "invalid",
            "No assignment of yours has this id.",
        ),
    ],
)
def test_bad_messages_get_a_clear_error_and_change_nothing(world, message, code, text):
    cookie = _cookie(world.learner.user)
    before = db_snapshot()

    async def conversation():
        ws = _socket(cookie)
        assert await ws.connect(timeout=10) == (True, None)
        await ws.send_json_to(message)
        reply = await ws.receive_json_from(timeout=10)
        await ws.disconnect()
        return reply

    assert async_to_sync(conversation)() == {"type": "error", "code": code, "message": text}
    assert db_snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_anonymous_and_other_tenants_are_refused(world, tenant_b):
    async def attempt(cookie, slug):
        ws = _socket(cookie, slug)
        outcome = await ws.connect(timeout=10)
        await ws.disconnect()
        return outcome

    assert async_to_sync(attempt)(b"", "alpha") == (False, CLOSE_NOT_FOUND)
    assert async_to_sync(attempt)(_cookie(tenant_b.learner.user), "alpha") == (
        False,
        CLOSE_NOT_FOUND,
    )
