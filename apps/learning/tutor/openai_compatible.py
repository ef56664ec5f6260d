"""A tutor backed by a model behind any OpenAI-compatible chat-completions endpoint: vLLM,
Ollama, a llama.cpp server, or a hosted API. Streams through the official `openai` package.

The conversation sent: one system message (servers' chat templates differ on several, or on
one not first) holding SYSTEM_PROMPT, the assignment's title, the course material (the top
BM25 passages for the question, each under its lesson's title and section), the learner's
latest-run diagnosis and mastery; then the history's user/assistant turns; then the question.

Citations: the run whose diagnosis and the exercise whose goal the prompt gave, then the lessons
of the passages given as context whose title the answer names (the prompt asks for "(see
lesson: <title>)"); when the answer names none, every lesson given, since the answer was
written from them. Token counts: the server's usage (asked for with
`stream_options.include_usage`); a server that sends none gets words counted instead
(base.count_words over the messages sent and the answer).

Failures raise TutorUnavailable, saying what failed and where (the endpoint's address without
any credentials in it), never with the API key or the server's words about it. No retries: a
learner is waiting, and the caller may fall back to the GroundedTutor. `timeout` bounds the
connection and each wait for the next piece of the stream, not the whole answer (max_tokens
bounds that).

A base_url that is not an http(s) URL is a ValueError when the tutor is made (configuration).
Connections go through egress.GuardedTransport: an address that is not public (loopback,
private, link-local, metadata...) is refused when connecting, unless its host is in
`allowed_hosts`; the refusal is a TutorUnavailable of kind "connection" that says so.
The client is made per answer and closed after it: an httpx client belongs to its event loop,
and a tutor object may outlive one.
"""

from collections.abc import AsyncIterator, Collection, Sequence
from urllib.parse import urlsplit, urlunsplit

import openai

from apps.learning.bkt import mastery_percent

from .base import (
    Citation,
    Passage,
    TutorChunk,
    TutorDone,
    TutorEvent,
    TutorRequest,
    TutorUnavailable,
    count_words,
)
from .egress import GuardedTransport
from .retrieval import PassageIndex

CONTEXT_PASSAGES = 4
# Sent as the key when none is configured (local servers need none): an explicit value keeps
# the openai package from reading OPENAI_API_KEY or OPENAI_ADMIN_KEY from the environment, which
# must never go to a tenant's endpoint.
NO_KEY = "no-key"

SYSTEM_PROMPT = """\
You are the tutor of an online course on building neural networks. You help one learner \
understand; you do not do their work for them.
- Teach: explain the concepts, ask a guiding question, or give a hint for the next step.
- Do not write a full solution or complete code for an assignment that is still open; short \
snippets that illustrate a concept are fine.
- Never reveal, guess or reconstruct hidden test data: the test set, its labels, the hidden \
split or the grader's expected answers.
- Ground your answer in the course material below. When you use a lesson, cite it by its \
title as "(see lesson: <title>)". If the material does not cover the question, say so and \
suggest asking the teacher rather than guessing.
- Be concise and friendly."""


def build_messages(request: TutorRequest, passages: Sequence[Passage]) -> list[dict[str, str]]:
    """The chat messages for the request, with `passages` as the course material."""
    context = [SYSTEM_PROMPT]
    if request.assignment_title:
        context.append(f"The learner is working on the assignment “{request.assignment_title}”.")
    if request.exercise_goal:
        context.append(f"The exercise's goal: {request.exercise_goal}")
    if passages:
        material = [
            f"[{i}] Lesson “{p.lesson_title}”"
            + (f", section “{p.heading}”" if p.heading else "")
            + f":\n{p.text}"
            for i, p in enumerate(passages, start=1)
        ]
        context.append("Course material:\n\n" + "\n\n".join(material))
    else:
        context.append("Course material: none of the lessons matches this question.")
    if request.diagnosis:
        notes = "\n".join(f"- {n.title}: {n.message}" for n in request.diagnosis)
        which = f" ({request.run.lesson_title})" if request.run else ""
        context.append(
            f"Diagnosis of the learner's run{which}; a question about their score or their "
            f"run is about this first:\n{notes}"
        )
    if request.mastery:
        skills = "\n".join(
            f"- {m.skill}: {mastery_percent(m.probability)}%" for m in request.mastery
        )
        context.append(f"Estimated mastery of the learner's skills:\n{skills}")
    messages = [{"role": "system", "content": "\n\n".join(context)}]
    messages += [
        {"role": t.role, "content": t.content}
        for t in request.history
        if t.role in ("user", "assistant")
    ]
    messages.append({"role": "user", "content": request.question})
    return messages


def context_cited(request: TutorRequest) -> list[Citation]:
    """The run whose diagnosis, and the exercise whose goal, the prompt gave: cited always,
    since the answer was written knowing them."""
    cited = [request.run] if request.run and request.diagnosis else []
    return cited + ([request.exercise] if request.exercise else [])


def cited_lessons(answer: str, passages: Sequence[Passage]) -> list[Citation]:
    """The lessons of `passages` the answer names by title (all of them if it names none)."""
    given = list(dict.fromkeys(Citation.of(p) for p in passages))
    named = [c for c in given if c.lesson_title.casefold() in answer.casefold()]
    return named or given


class OpenAICompatibleTutor:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_tokens: int = 800,
        temperature: float | None = 0.3,
        context_passages: int = CONTEXT_PASSAGES,
        allowed_hosts: Collection[str] = (),
    ):
        self.base_url = base_url
        self.model = model
        self._api_key = api_key or NO_KEY
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.context_passages = context_passages
        self.allowed_hosts = tuple(allowed_hosts)
        self.where = _public_address(base_url)  # raises ValueError for a URL that is not http(s)

    def __repr__(self) -> str:  # no key in logs
        return f"OpenAICompatibleTutor({self.where!r}, model={self.model!r})"

    async def answer(self, request: TutorRequest) -> AsyncIterator[TutorEvent]:
        index = PassageIndex.from_lessons(request.lessons)
        found = index.search(
            request.question, self.context_passages, context=request.last_user_turn()
        )
        passages = [s.passage for s in found]
        messages = build_messages(request, passages)
        answer: list[str] = []
        usage = None
        failure: TutorUnavailable | None = None
        try:
            client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self._api_key,
                timeout=self.timeout,
                max_retries=0,
                http_client=openai.DefaultAsyncHttpxClient(
                    transport=GuardedTransport(allowed_hosts=self.allowed_hosts)
                ),
                # Not the OPENAI_ORG_ID / OPENAI_PROJECT_ID of this host's environment.
                default_headers={"OpenAI-Organization": openai.omit, "OpenAI-Project": openai.omit},
            )
            async with client:
                extra = {} if self.temperature is None else {"temperature": self.temperature}
                stream = await client.chat.completions.create(
                    model=self.model,
                    messages=messages,  # type: ignore[arg-type]
                    max_tokens=self.max_tokens,
                    stream=True,
                    stream_options={"include_usage": True},
                    **extra,
                )
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        if choice.index == 0 and choice.delta and choice.delta.content:
                            answer.append(choice.delta.content)
                            yield TutorChunk(choice.delta.content)
        except openai.OpenAIError as exc:  # the package wraps httpx's errors, mid-stream too
            failure = self._unavailable(exc)
        if failure is not None:
            # Raised outside the `except`, so the server's error (which may echo the key) is not
            # even chained as its context.
            raise failure

        text = "".join(answer)
        if usage is not None:
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
        else:
            prompt = sum(count_words(m["content"]) for m in messages)
            completion = count_words(text)
        yield TutorDone(context_cited(request) + cited_lessons(text, passages), prompt, completion)

    def _unavailable(self, exc: BaseException) -> TutorUnavailable:
        """What failed, in words; never the key, nor what the server said about it."""
        message, kind, status = self._describe(exc)
        if len(self._api_key) >= 4:  # belt and braces: no message carries it anyway
            message = message.replace(self._api_key, "***")
        return TutorUnavailable(message, kind=kind, status=status)

    def _describe(self, exc: BaseException) -> tuple[str, str, int | None]:
        where = f"The tutor's model server at {self.where}"
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status in (401, 403):
                return f"{where} refused the API key (HTTP {status}).", "auth", status
            if status == 429:
                return f"{where} is rate-limiting or out of quota (HTTP 429).", "rate_limit", 429
            if status == 404:
                return (
                    f"{where} has no model {self.model!r} or no chat-completions API (HTTP 404).",
                    "request",
                    status,
                )
            if status >= 500:
                return f"{where} failed with a server error (HTTP {status}).", "server", status
            return f"{where} rejected the request (HTTP {status}).", "request", status
        if isinstance(exc, openai.APITimeoutError):
            return f"{where} did not answer within {self.timeout:g} s.", "timeout", None
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return (
                f"{where} could not be reached ({type(cause).__name__}: {cause}).",
                "connection",
                None,
            )
        return (
            f"{where} sent an answer that could not be read ({type(exc).__name__}).",
            "protocol",
            None,
        )


def _public_address(url: str) -> str:
    """The http(s) URL without user:password, query or fragment (a key may hide in any of them).
    ValueError for anything else: a configuration error, not an unavailable tutor."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"the tutor's endpoint is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the tutor's endpoint must be an http:// or https:// URL")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
