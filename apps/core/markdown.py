"""Markdown written by teachers (lessons, exercise instructions) as HTML that is safe to show.

CommonMark with tables and strikethrough (markdown-it-py), raw HTML in the source escaped rather
than passed through, and the result cleaned by nh3 (the ammonia sanitiser) to an allow-list of
tags and attributes, so neither a script nor an event handler nor a javascript: link survives.
"""

import nh3
from markdown_it import MarkdownIt

_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_renderer.enable(["table", "strikethrough"])

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "img",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
}


def markdown_to_html(text: str, heading_offset: int = 0) -> str:
    """`heading_offset` moves headings down that many levels (at most to h6), so a lesson's
    "# Title" sits under the page's own h1 and the outline stays one h1 per page."""
    tokens = _renderer.parse(text or "")
    if heading_offset:
        for token in tokens:
            if token.type in ("heading_open", "heading_close"):
                token.tag = f"h{min(6, int(token.tag[1]) + heading_offset)}"
    html = _renderer.renderer.render(tokens, _renderer.options, {})
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    )
