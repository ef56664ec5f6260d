"""Lessons cut into passages and ranked for a question with BM25, for both tutor backends.

Passages. A lesson's Markdown is parsed (markdown-it, CommonMark with tables, as
apps.core.markdown renders it) and cut at every heading into sections; a section into blocks,
one per paragraph, a code block, table, list or quote staying with the paragraph before it
(it is that paragraph's example). Blocks shorter than MIN_PASSAGE_CHARS are merged with the
next block of their section (a short last one with the one before), so a passage is a few
sentences with their code, never one line. A passage's text is its Markdown source, unchanged.

Ranking. BM25 (bm25s, its "lucene" variant: k1=1.5, b=0.75, idf = ln(1 + (N - df + 0.5) /
(df + 0.5)), which stays positive for any corpus size) over the words of each passage with its
lesson's title and section heading (so "what is a convolution" finds the passages of a lesson
called "Convolutions"). A passage sharing no word with the question scores 0 and is never
returned: an empty result means the lessons do not speak of it.

Words (`tokenize`): lowercase runs of letters and digits ("conv2d", "3x3" stay whole), less
STOP_WORDS, with a light plural stemming ("layers" -> "layer", "batches" -> "batch",
"probabilities" -> "probability"; "loss", "bias", "relu" unchanged). Query words count once.
"""

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import bm25s
import numpy as np
from markdown_it import MarkdownIt

from .base import Lesson, Passage

K1 = 1.5
B = 0.75
MIN_PASSAGE_CHARS = 280
DEFAULT_TOP_K = 3

# One string, split: the list kept as compact as a paragraph.
_STOP_WORDS = (
    "a about above after again all also am an and any are as at be because been before "
    "being below between both but by can could did do does doing done down during each few "
    "for from further had has have having he her here hers him his how i if in into is it "
    "its itself just me more most my myself no nor not now of off on once only or other "
    "our ours out over own same she should so some such than that the their theirs them "
    "then there these they this those through to too under until up very was we were what "
    "when where which while who whom why will with would you your yours yourself s t d ll "
    "m re ve don doesn didn isn aren wasn won shouldn please tell explain thanks thank hi "
    "hello"
)
STOP_WORDS = frozenset(_STOP_WORDS.split())
# Words that, alone, make a question a follow-up of the previous one ("why?", "can you explain
# more?", "give an example"): such a question is searched together with its context.
FOLLOW_UP_WORDS = frozenset(
    ["again", "elaborate", "example", "clarify", "mean", "meaning", "detail", "further"]
)

_WORD = re.compile(r"[^\W_]+")
_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
# Blocks that belong to the paragraph before them rather than starting a passage of their own.
_ATTACHED = {
    "fence",
    "code_block",
    "table_open",
    "bullet_list_open",
    "ordered_list_open",
    "blockquote_open",
    "html_block",
}


def stem(word: str) -> str:
    """Plural to singular, lightly: -ies -> -y, -sses -> -ss, -xes/-ches/-shes drop -es, any other
    final -s drops unless the word ends in -ss, -us, -is or -as or is three letters or fewer."""
    if len(word) <= 3 or not word.endswith("s"):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith(("xes", "ches", "shes")):
        return word[:-2]
    if word.endswith(("ss", "us", "is", "as")):
        return word
    return word[:-1]


def tokenize(text: str) -> list[str]:
    """The words BM25 compares: lowercase letters/digits runs, no stop words, plurals stemmed."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def split_passages(lesson: Lesson) -> list[Passage]:
    """The lesson's passages, in the lesson's order (see the module docstring)."""
    source = lesson.body_markdown or ""
    lines = source.splitlines()
    tokens = _markdown.parse(source)
    # Each section: its heading and its blocks, a block being a list of (start, end) line spans.
    sections: list[tuple[str, list[list[tuple[int, int]]]]] = [("", [])]
    for i, token in enumerate(tokens):
        if token.level != 0 or token.map is None or token.nesting == -1:
            continue
        span = (token.map[0], token.map[1])
        if token.type == "heading_open":
            sections.append((tokens[i + 1].content.strip(), []))
        elif token.type == "hr":
            continue
        elif token.type in _ATTACHED and sections[-1][1]:
            sections[-1][1][-1].append(span)
        else:  # a paragraph, or an example with no paragraph before it in its section
            sections[-1][1].append([span])

    passages: list[Passage] = []
    for heading, blocks in sections:
        texts = ["\n".join(lines[spans[0][0] : spans[-1][1]]).strip() for spans in blocks]
        for text in _merge_short([t for t in texts if t]):
            passages.append(Passage(lesson.lesson_id, lesson.title, lesson.url, text, heading))
    return passages


def _merge_short(texts: list[str]) -> list[str]:
    merged: list[str] = []
    pending = ""
    for text in texts:
        pending = f"{pending}\n\n{text}" if pending else text
        if len(pending) >= MIN_PASSAGE_CHARS:
            merged.append(pending)
            pending = ""
    if pending:
        if merged:
            merged[-1] = f"{merged[-1]}\n\n{pending}"
        else:
            merged.append(pending)
    return merged


@dataclass(frozen=True)
class ScoredPassage:
    passage: Passage
    score: float  # BM25, > 0


class PassageIndex:
    """BM25 over passages. Built per request from the course's lessons: a course is a few dozen
    lessons, a few hundred passages, indexed in milliseconds."""

    def __init__(self, passages: Sequence[Passage]):
        self.passages = list(passages)
        self._bm25: bm25s.BM25 | None = None
        corpus = [tokenize(f"{p.lesson_title}\n{p.heading}\n{p.text}") for p in self.passages]
        self._df = Counter(word for words in corpus for word in set(words))
        if self.passages:
            self._bm25 = bm25s.BM25(k1=K1, b=B, method="lucene")
            self._bm25.index(corpus, show_progress=False)

    @classmethod
    def from_lessons(cls, lessons: Iterable[Lesson]) -> "PassageIndex":
        return cls([p for lesson in lessons for p in split_passages(lesson)])

    def idf(self, word: str) -> float:
        """The word's inverse document frequency over the passages, as BM25 weighs it."""
        n, df = len(self.passages), self._df.get(word, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> np.ndarray:
        """Each passage's BM25 score for the query (0 where they share no word)."""
        words = list(dict.fromkeys(tokenize(query)))
        if self._bm25 is None or not words:
            return np.zeros(len(self.passages))
        return np.asarray(self._bm25.get_scores(words), dtype=float)

    def search(
        self, query: str, k: int = DEFAULT_TOP_K, *, context: str = "", context_weight: float = 0.5
    ) -> list[ScoredPassage]:
        """The (at most) k best passages for the query, best first, all with a score > 0.

        `context` (the conversation's previous question) only re-ranks: score = BM25(query) +
        context_weight * BM25(context), among the passages the query itself matches, so an
        unrelated question is not answered from the previous topic. A query with no words of
        its own but follow-up ones ("why?", "an example?") is searched as its context instead.
        """
        if context and not set(tokenize(query)) - FOLLOW_UP_WORDS:
            query, context = f"{context}\n{query}", ""
        own = self.scores(query)
        total = own + context_weight * self.scores(context) if context else own
        order = [i for i in np.argsort(-total, kind="stable") if own[i] > 0]
        return [ScoredPassage(self.passages[i], float(total[i])) for i in order[:k]]
