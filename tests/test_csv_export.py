"""The one CSV writer (apps/core/csv_export.py): OWASP's rule on text, numbers left numbers."""

import csv
import io
from decimal import Decimal

import pytest

from apps.core.csv_export import SafeCsvWriter, csv_cell, csv_response


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+41 22 000", "'+41 22 000"),
        ("-1+2", "'-1+2"),
        ("-3", "'-3"),  # text that looks like a number is still text
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Ada = Lovelace", "Ada = Lovelace"),
        ("", ""),
        (None, ""),
        (Decimal("-2.50"), Decimal("-2.50")),
        (-7, -7),
        (-0.25, -0.25),
        (True, "True"),
    ],
)
def test_csv_cell(value, written):
    assert csv_cell(value) == written


def test_the_writer_and_the_response_apply_it_to_every_cell():
    stream = io.StringIO()
    SafeCsvWriter(stream).writerows([["=a", Decimal("-1.5"), "ok"], ["@b", None, -2]])
    assert list(csv.reader(io.StringIO(stream.getvalue()))) == [
        ["'=a", "-1.5", "ok"],
        ["'@b", "", "-2"],
    ]
    response = csv_response(filename="x.csv", header=["-h"], rows=[["+r", 3]])
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'
    assert response.content.decode() == "'-h\r\n'+r,3\r\n"
