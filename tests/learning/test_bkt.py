"""Bayesian Knowledge Tracing: the likelihood against enumeration of every hidden path, parameter
recovery from data generated with known parameters (1,000 learners, 20 skills, 50 opportunities
each), padding that changes nothing, and an update whose work does not grow with history."""

import itertools
import math

import pytest
import torch

from apps.learning.bkt import BKTParams, _forward_backward, fit, simulate, update


def _brute_force_likelihood(answers, prior, learn, slip, guess) -> float:
    """Sum over every path of known/unknown states (knowing is never lost)."""
    total = 0.0
    for path in itertools.product((0, 1), repeat=len(answers)):
        if any(a > b for a, b in itertools.pairwise(path)):
            continue  # a known skill stays known
        p = prior if path[0] else 1 - prior
        for before, after in itertools.pairwise(path):
            p *= 1 if before else (learn if after else 1 - learn)
        for state, right in zip(path, answers, strict=True):
            p_right = 1 - slip if state else guess
            p *= p_right if right else 1 - p_right
        total += p
    return total


@pytest.mark.parametrize("answers", [(1, 0, 1, 1), (0, 0, 0, 0), (1, 1, 1, 1), (0, 1, 0, 1, 1)])
def test_the_likelihood_is_the_sum_over_every_hidden_path(answers):
    prior, learn, slip, guess = 0.3, 0.2, 0.1, 0.25
    correct = torch.tensor([answers], dtype=torch.float64)
    mask = torch.ones_like(correct, dtype=torch.bool)
    values = [torch.tensor([v], dtype=torch.float64) for v in (prior, learn, slip, guess)]
    _, _, log_likelihood = _forward_backward(correct, mask, *values)
    expected = math.log(_brute_force_likelihood(answers, prior, learn, slip, guess))
    assert float(log_likelihood[0]) == pytest.approx(expected, abs=1e-12)


def _truth(n_skills: int, generator: torch.Generator) -> BKTParams:
    def between(low, high):
        return low + (high - low) * torch.rand(n_skills, generator=generator, dtype=torch.float64)

    return BKTParams(
        prior=between(0.1, 0.5), learn=between(0.05, 0.3),
        slip=between(0.05, 0.2), guess=between(0.1, 0.3),
    )  # fmt: skip


def test_em_recovers_known_parameters_within_0_05():
    generator = torch.Generator().manual_seed(7)
    truth = _truth(20, generator)
    correct, mask, skill = simulate(truth, learners=1000, opportunities=50, generator=generator)
    assert correct.shape == (20_000, 50)
    result = fit(correct, mask, skill, 20, tolerance=1e-9, max_iterations=500)
    assert result.converged
    for name in ("prior", "learn", "slip", "guess"):
        error = (getattr(result.params, name) - getattr(truth, name)).abs().max()
        assert float(error) < 0.05, name


def test_padding_after_a_sequence_changes_nothing():
    generator = torch.Generator().manual_seed(3)
    truth = _truth(3, generator)
    correct, mask, skill = simulate(truth, learners=200, opportunities=20, generator=generator)
    lengths = torch.randint(5, 21, (len(skill),), generator=generator)
    mask = torch.arange(20).unsqueeze(0) < lengths.unsqueeze(1)
    padded = torch.cat([correct, torch.ones(len(skill), 15, dtype=correct.dtype)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(len(skill), 15, dtype=torch.bool)], dim=1)
    # Garbage where the mask is off must not count.
    garbage = torch.where(mask, correct, torch.ones_like(correct) - correct)
    plain = fit(garbage, mask, skill, 3, max_iterations=30, tolerance=0)
    longer = fit(torch.cat([garbage, padded[:, 20:]], 1), padded_mask, skill, 3,
                 max_iterations=30, tolerance=0)  # fmt: skip
    for name in ("prior", "learn", "slip", "guess"):
        assert torch.allclose(getattr(plain.params, name), getattr(longer.params, name))
    assert plain.log_likelihood == pytest.approx(longer.log_likelihood)


def test_the_update_is_bayes_then_learning():
    # P(known | right) = 0.4·0.9 / (0.4·0.9 + 0.6·0.2) = 0.75; then 0.75 + 0.25·0.1 = 0.775.
    assert update(0.4, True, learn=0.1, slip=0.1, guess=0.2) == pytest.approx(0.775)
    # P(known | wrong) = 0.4·0.1 / (0.4·0.1 + 0.6·0.8) = 0.0769…; then + its rest · 0.1.
    expected = 0.04 / 0.52 + (1 - 0.04 / 0.52) * 0.1
    assert update(0.4, False, learn=0.1, slip=0.1, guess=0.2) == pytest.approx(expected)


class Counted(float):
    """A float that counts the arithmetic done with it (and with what it produces)."""

    operations = 0

    def _count(self, result):
        Counted.operations += 1
        return Counted(result)

    def __add__(self, other):
        return self._count(float(self) + float(other))

    __radd__ = __add__

    def __sub__(self, other):
        return self._count(float(self) - float(other))

    def __rsub__(self, other):
        return self._count(float(other) - float(self))

    def __mul__(self, other):
        return self._count(float(self) * float(other))

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self._count(float(self) / float(other))

    def __rtruediv__(self, other):
        return self._count(float(other) / float(self))


@pytest.mark.parametrize("history", [0, 10, 1000])
def test_an_update_does_the_same_work_after_any_history(history):
    params = {"learn": Counted(0.1), "slip": Counted(0.1), "guess": Counted(0.2)}
    mastery = Counted(0.3)
    for step in range(history):
        mastery = update(mastery, step % 3 != 0, **params)
    Counted.operations = 0
    update(mastery, True, **params)
    right = Counted.operations
    Counted.operations = 0
    update(mastery, False, **params)
    assert (right, Counted.operations) == (9, 9)
