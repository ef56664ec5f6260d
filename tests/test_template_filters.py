"""The shared template filters: GPU time in words, and a part as a percentage of a whole."""

from decimal import Decimal

import pytest

from apps.core.templatetags.aula import gpu_time, percent_of


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 s"),
        (Decimal("2.5"), "2.5 s"),
        ("59.99", "59.9 s"),
        (60, "1 min"),
        (61.5, "1 min 1 s"),
        (600, "10 min"),
        (3600, "1 h"),
        (3660, "1 h 1 min"),
        (123456, "34 h 17 min"),
        (3_600_000, "1,000 h"),
        (-90, "-1 min 30 s"),
        ("-2.5", "-2.5 s"),
        (None, ""),
        ("", ""),
    ],
)
def test_gpu_time_in_words(seconds, words):
    assert gpu_time(seconds) == words


@pytest.mark.parametrize(
    ("part", "whole", "percent"),
    [(1, 4, 25), (Decimal("2.5"), 3600, 0), (5, 4, 100), (-1, 4, 0), (1, 0, 0), (None, 10, 0)],
)
def test_percent_of_is_a_whole_number_within_0_and_100(part, whole, percent):
    assert percent_of(part, whole) == percent
