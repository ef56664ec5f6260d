"""The words of the learner's course pages, of the join-code parts and of the teachers' dataset
pages are translatable: every text a reader sees there (text between tags, and the aria-label,
title, placeholder and alt attributes) is inside {% translate %} or {% blocktranslate %}, or is
a template value."""

import re

import pytest
from django.template.base import Lexer, TokenType

from tests.conftest import ROOT

HOLE = "\x00"  # what a template tag or value becomes: not text written in the template
READ_ATTRIBUTES = re.compile(r"""\b(?:aria-label|title|placeholder|alt)\s*=\s*(["'])(.*?)\1""")
WORD = re.compile(r"[^\W\d_]{2,}")
NOT_WORDS = {"UTC"}  # the time zone's name, the same in every language

# A whole template, or the part of one from a marker up to the next end marker.
CHECKED = {
    "courses/my_course.html": None,
    "courses/my_courses.html": None,
    "courses/teach/course.html": ('<section aria-labelledby="join-code-heading">', "</section>"),
    "datasets/datasets.html": None,
    "datasets/preview.html": None,
    "datasets/version.html": None,
    "datasets/version_new.html": None,
    "tenants/home.html": (
        "{% if assignments is not None %}",
        '<section aria-labelledby="next-heading"',
    ),
}


def untranslated(source: str) -> list[str]:
    """The words of template `source` that a reader sees and no translation tag holds."""
    parts, skip_to = [], None
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents.split() else ""
            if skip_to is not None:
                if name == skip_to:
                    skip_to = None
                continue
            if name in ("blocktranslate", "blocktrans", "comment"):
                skip_to = "end" + name
            parts.append(HOLE)
        elif skip_to is not None:
            continue
        elif token.token_type == TokenType.TEXT:
            parts.append(token.contents)
        else:  # a {{ value }} or a {# comment #}
            parts.append(HOLE)
    text = re.sub(r"&#?\w+;", " ", "".join(parts))
    words = []
    for tag in re.findall(r"<[^>]*>", text):
        for _, value in READ_ATTRIBUTES.findall(tag):
            words += WORD.findall(value)
    words += WORD.findall(re.sub(r"<[^>]*>", " ", text))
    return [w for w in words if w not in NOT_WORDS]


def _part(name: str) -> str:
    source = (ROOT / "templates" / name).read_text()
    markers = CHECKED[name]
    if markers is None:
        return source
    start_marker, end_marker = markers
    assert source.count(start_marker) == 1, f"{name}: {start_marker!r} is not there once"
    start = source.index(start_marker)
    return source[start : source.index(end_marker, start)]


def test_the_check_finds_untranslated_text_and_attributes():
    sample = (
        '{% load i18n %}<p class="muted" title="Your score">Hello {{ name }}, '
        '<a href="{% url "x" %}" aria-label="{% translate "Open it" %}">{% translate "Open" %}</a>'
        "{% blocktranslate with n=name %}Bye {{ n }}{% endblocktranslate %} &mdash; done at "
        "{{ when }} UTC{% comment %}Not shown{% endcomment %}{# nor this #}</p>"
    )
    assert untranslated(sample) == ["Your", "score", "Hello", "done", "at"]


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_learner_course_and_join_code_words_are_translatable(name):
    source = _part(name)
    assert "{% translate" in source or "{% blocktranslate" in source
    assert untranslated(source) == []
