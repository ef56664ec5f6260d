"""Teachers' Markdown becomes HTML with nothing that can run: raw HTML is escaped, links keep
only http(s) and mailto, and tables, code and emphasis come through."""

import pytest

from apps.core.markdown import markdown_to_html


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("**bold** and *it*", "<p><strong>bold</strong> and <em>it</em></p>\n"),
        ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"),
        ('<img src=x onerror="alert(1)">', '<p>&lt;img src=x onerror="alert(1)"&gt;</p>\n'),
        ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>\n"),
        (
            "[docs](https://pytorch.org)",
            '<p><a href="https://pytorch.org" rel="noopener noreferrer nofollow">docs</a></p>\n',
        ),
        ("![a](data:image/png;base64,AAAA)", '<p><img alt="a"></p>\n'),
        ("`x = 1`", "<p><code>x = 1</code></p>\n"),
        (
            "| a |\n|--:|\n| 1 |",
            '<table>\n<thead>\n<tr>\n<th style="text-align:right">a</th>\n</tr>\n</thead>\n'
            '<tbody>\n<tr>\n<td style="text-align:right">1</td>\n</tr>\n</tbody>\n</table>\n',
        ),
        ("", ""),
    ],
)
def test_markdown_to_safe_html(source, html):
    assert markdown_to_html(source) == html


def test_headings_move_down_under_the_pages_own():
    assert markdown_to_html("# Title\n\n## Part\n\n###### Deep", 1) == (
        "<h2>Title</h2>\n<h3>Part</h3>\n<h6>Deep</h6>\n"
    )
    assert markdown_to_html("# Title") == "<h1>Title</h1>\n"
