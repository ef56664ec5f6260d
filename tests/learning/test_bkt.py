"""Bayesian Knowledge Tracing: the likelihood against enumeration of every hidden path, parameter
recovery from data generated with known parameters (1,000 learners, 20 skills, 50 opportunities
each), padding that changes nothing, and an update whose work does not grow with history."""

import itertools
import math

import pytest
import torch

from apps.learning.bkt import (
    BKTParams,
    _counts_by_forward_backward,
    _forward_backward,
    _TimeMajor,
    fit,
    log_likelihood,
    predict,
    simulate,
    update,
)


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
        prior=between(0.1, 0.5),
        learn=between(0.05, 0.3),
        slip=between(0.05, 0.2),
        guess=between(0.1, 0.3),
    )


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
    longer = fit(
        torch.cat([garbage, padded[:, 20:]], 1),
        padded_mask,
        skill,
        3,
        max_iterations=30,
        tolerance=0,
    )
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


def _padded(generator: torch.Generator, n_skills=3, learners=40, opportunities=12):
    """Simulated sequences cut to random lengths (1 to all), garbage beyond each one's end."""
    truth = _truth(n_skills, generator)
    correct, _, skill = simulate(
        truth, learners=learners, opportunities=opportunities, generator=generator
    )
    lengths = torch.randint(1, opportunities + 1, (len(skill),), generator=generator)
    mask = torch.arange(opportunities).unsqueeze(0) < lengths.unsqueeze(1)
    garbage = torch.where(mask, correct, torch.ones_like(correct) - correct)
    return truth, garbage, mask, skill


@pytest.mark.parametrize("chunk", [None, 7])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fit_s_time_major_pass_agrees_with_the_forward_backward(dtype, chunk, monkeypatch):
    if chunk is not None:  # sequences in several blocks
        monkeypatch.setattr(_TimeMajor, "CHUNK", chunk)
    generator = torch.Generator().manual_seed(11)
    _, correct, mask, skill = _padded(generator, opportunities=40)
    truth = _truth(3, generator)
    params = BKTParams(*(getattr(truth, name).to(dtype) for name in BKTParams.__annotations__))
    correct = correct.to(dtype)
    expected = _counts_by_forward_backward(correct, mask, skill, params)
    counts = _TimeMajor(correct, mask, skill, dtype).expected_counts(params)
    tolerance = (
        {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-4}
    )
    for name in expected._fields:
        assert torch.allclose(getattr(counts, name), getattr(expected, name), **tolerance), name


def test_answers_between_0_and_1_take_the_general_pass():
    generator = torch.Generator().manual_seed(13)
    _, correct, mask, skill = _padded(generator)
    soft = correct * 0.8 + 0.1
    result = fit(soft, mask, skill, 3, max_iterations=5, tolerance=0)
    values = [getattr(result.params, name)[skill] for name in ("prior", "learn", "slip", "guess")]
    _, _, expected = _forward_backward(soft, mask, *values)
    assert result.log_likelihood == pytest.approx(float(expected.sum()))
    assert log_likelihood(result.params, soft, mask, skill) == pytest.approx(result.log_likelihood)


def test_the_log_likelihood_is_that_of_the_one_step_ahead_predictions():
    generator = torch.Generator().manual_seed(17)
    truth, correct, mask, skill = _padded(generator)
    result = fit(correct, mask, skill, 3, max_iterations=10, tolerance=0)
    for params in (truth, result.params):
        p = predict(params, correct, mask, skill)
        chance = torch.where(correct > 0.5, p, 1 - p)[mask]
        assert log_likelihood(params, correct, mask, skill) == pytest.approx(
            float(chance.log().sum()), rel=1e-12
        )
    assert log_likelihood(result.params, correct, mask, skill) == pytest.approx(
        result.log_likelihood, rel=1e-12
    )


def _predict_one_by_one(params, correct, mask, skill):
    """The textbook loop: predict from the current mastery, then `update` on the answer."""
    out = []
    for n in range(len(skill)):
        k = int(skill[n])
        prior, learn = float(params.prior[k]), float(params.learn[k])
        slip, guess = float(params.slip[k]), float(params.guess[k])
        mastery, row = prior, []
        for t in range(correct.shape[1]):
            if not mask[n, t]:
                row.append(0.0)
                continue
            row.append(mastery * (1 - slip) + (1 - mastery) * guess)
            right = bool(correct[n, t] > 0.5)
            mastery = update(mastery, right, learn=learn, slip=slip, guess=guess)
        out.append(row)
    return torch.tensor(out, dtype=torch.float64)


def test_predict_is_update_one_step_ahead():
    generator = torch.Generator().manual_seed(5)
    truth, correct, mask, skill = _padded(generator, learners=10)
    predicted = predict(truth, correct, mask, skill)
    assert predicted.shape == correct.shape
    assert torch.allclose(predicted, _predict_one_by_one(truth, correct, mask, skill))
    assert bool((predicted[~mask] == 0).all())


def test_predict_starts_from_the_prior():
    params = BKTParams(
        prior=torch.tensor([0.3, 0.6], dtype=torch.float64),
        learn=torch.tensor([0.1, 0.2], dtype=torch.float64),
        slip=torch.tensor([0.1, 0.05], dtype=torch.float64),
        guess=torch.tensor([0.2, 0.25], dtype=torch.float64),
    )
    correct = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    mask = torch.ones_like(correct, dtype=torch.bool)
    skill = torch.tensor([0, 1, 1])
    first = predict(params, correct, mask, skill)[:, 0]
    expected = params.prior * (1 - params.slip) + (1 - params.prior) * params.guess
    assert torch.allclose(first, expected[skill])
    assert float(first[0]) == pytest.approx(0.3 * 0.9 + 0.7 * 0.2)
    # The second prediction comes from the mastery `update` gives after the first answer.
    mastery = update(0.3, True, learn=0.1, slip=0.1, guess=0.2)
    second = predict(params, correct, mask, skill)[0, 1]
    assert float(second) == pytest.approx(mastery * 0.9 + (1 - mastery) * 0.2)
