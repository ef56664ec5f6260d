"""Bayesian Knowledge Tracing: each skill's four parameters fitted by EM (Baum-Welch) over every
learner's sequence of every skill at once, as batched tensor operations (PyTorch), and the update
of one learner's mastery after one observation, in constant time. `predict` gives every
opportunity's one-step-ahead P(right), `log_likelihood` the data's under any parameters.

The model, per skill: a learner either knows the skill or not. Before the first opportunity they
know it with probability `prior`; after each opportunity an unknown skill becomes known with
probability `learn` (and a known one stays known); a learner who knows the skill answers wrong
with probability `slip`, one who does not answers right with probability `guess`.

Data: N sequences (one per learner and skill), padded to the longest, T opportunities:
`correct` [N, T] (1.0 right, 0.0 wrong), `mask` [N, T] (True where an observation is; padding
only at the end), `skill` [N] (the sequence's skill, 0..K-1). No Django here: the Celery task
and the services feed it tensors.
"""

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

EPS = 1e-6
# Above 0.5 a slip or a guess would make "knows" and "does not know" trade places (the model is
# symmetric in them); EM is held below, as is usual for BKT.
MAX_SLIP_GUESS = 0.5 - 1e-3


@dataclass(frozen=True)
class BKTParams:
    """Each a tensor [K], one value per skill."""

    prior: torch.Tensor
    learn: torch.Tensor
    slip: torch.Tensor
    guess: torch.Tensor

    @classmethod
    def uniform(
        cls,
        n_skills: int,
        *,
        prior=0.3,
        learn=0.1,
        slip=0.1,
        guess=0.2,
        dtype=torch.float64,
        device=None,
    ) -> "BKTParams":
        def full(value):
            return torch.full((n_skills,), value, dtype=dtype, device=device)

        return cls(full(prior), full(learn), full(slip), full(guess))


@dataclass(frozen=True)
class FitResult:
    params: BKTParams
    log_likelihood: float  # of the data under the fitted parameters
    iterations: int
    converged: bool


def _emissions(correct: torch.Tensor, mask: torch.Tensor, slip, guess) -> torch.Tensor:
    """P(observation | state) as [N, T, 2] (state 0: unknown, 1: known); 1 where masked."""
    right = torch.stack([guess, 1 - slip], dim=-1)  # [N, 2]
    wrong = 1 - right
    c = correct.unsqueeze(-1)
    e = c * right.unsqueeze(1) + (1 - c) * wrong.unsqueeze(1)
    return torch.where(mask.unsqueeze(-1), e, torch.ones_like(e))


def _forward_backward(correct, mask, prior, learn, slip, guess):
    """Scaled forward-backward over every sequence at once. prior..guess are [N] (each
    sequence's skill's values). Returns gamma [N, T, 2], the expected unknown→known transitions
    [N, T-1], and the log-likelihood of each sequence [N]."""
    n, t_len = correct.shape
    e = _emissions(correct, mask, slip, guess)
    alpha = torch.empty(n, t_len, 2, dtype=e.dtype, device=e.device)
    scale = torch.empty(n, t_len, dtype=e.dtype, device=e.device)
    first = torch.stack([1 - prior, prior], dim=-1) * e[:, 0]
    scale[:, 0] = first.sum(-1)
    alpha[:, 0] = first / scale[:, 0:1]
    for t in range(1, t_len):
        prev = alpha[:, t - 1]
        # Through the transition: unknown stays with 1 - learn, known stays known.
        moved = torch.stack([prev[:, 0] * (1 - learn), prev[:, 0] * learn + prev[:, 1]], dim=-1)
        a = moved * e[:, t]
        scale[:, t] = a.sum(-1)
        alpha[:, t] = a / scale[:, t : t + 1]
    beta = torch.ones_like(alpha)
    for t in range(t_len - 2, -1, -1):
        nxt = e[:, t + 1] * beta[:, t + 1] / scale[:, t + 1 : t + 2]
        beta[:, t, 0] = (1 - learn) * nxt[:, 0] + learn * nxt[:, 1]
        beta[:, t, 1] = nxt[:, 1]
    gamma = alpha * beta
    # Expected unknown(t) → known(t+1): alpha_t(0) · learn · e_{t+1}(1) · beta_{t+1}(1) / c_{t+1}.
    learned = alpha[:, :-1, 0] * learn.unsqueeze(1) * e[:, 1:, 1] * beta[:, 1:, 1] / scale[:, 1:]
    log_likelihood = torch.where(mask, scale.log(), torch.zeros_like(scale)).sum(-1)
    return gamma, learned, log_likelihood


class _Counts(NamedTuple):
    """What the M step needs, per sequence [N]."""

    first_known: torch.Tensor  # P(known) at the first opportunity: prior's
    learned: torch.Tensor  # expected unknown → known transitions between two observations
    unknown_before: torch.Tensor  # expected unknown opportunities before an observation
    unknown: torch.Tensor  # expected unknown observations: guess's denominator
    unknown_right: torch.Tensor  # and its numerator
    known: torch.Tensor  # expected known observations: slip's denominator
    known_wrong: torch.Tensor  # and its numerator
    log_likelihood: torch.Tensor


def _counts_by_forward_backward(correct, mask, skill, params: BKTParams) -> _Counts:
    """The M step's sums from `_forward_backward`: any answers in [0, 1], [N, T, 2] arrays."""
    gamma, learned, log_likelihood = _forward_backward(
        correct,
        mask,
        params.prior[skill],
        params.learn[skill],
        params.slip[skill],
        params.guess[skill],
    )
    m = mask.to(gamma.dtype)
    unknown, known = gamma[..., 0] * m, gamma[..., 1] * m
    # Transitions only between two real observations.
    between = m[:, 1:]
    return _Counts(
        first_known=gamma[:, 0, 1],
        learned=(learned * between).sum(-1),
        unknown_before=(gamma[:, :-1, 0] * between).sum(-1),
        unknown=unknown.sum(-1),
        unknown_right=(unknown * correct).sum(-1),
        known=known.sum(-1),
        known_wrong=(known * (1 - correct)).sum(-1),
        log_likelihood=log_likelihood,
    )


class _TimeMajor:
    """`_forward_backward`'s model and sums, as `fit` runs them when every answer is 0 or 1:
    the same numbers to rounding (tests/learning/test_bkt.py), about 15 times faster on a CPU.

    - Time-major ([T, N]): one opportunity of every sequence is one contiguous row (rows of an
      [N, T] tensor are strided, each element on its own cache line).
    - Memory: the buffers are allocated once per fit and reused by every iteration (arrays of
      that size allocated anew cost page faults every time), and the backward pass is folded
      into per-sequence sums as it goes, so no [N, T, 2] array is made.
    - Fewer operations: with r = P(answer | known) / P(answer | unknown) (1 where masked),
      the scaled forward step is m0 = a0 · (1 - learn), c' = m0 + (1 - m0) · r, a0 = m0 / c',
      with the scale c = P(answer | unknown) · c'; the log of the first factor is counted once
      per sequence (rights · log guess + wrongs · log (1 - guess)), the second's in running
      products taken to logs once a pass. The backward pass in the same terms: e0 / c = 1 / c',
      e1 / c = r / c'.
    - On a CPU, sequences in blocks of CHUNK, and what depends on the parameters computed per
      skill and spread to the block's sequences row by row: the passes' operations stay on the
      calling thread (ATen shares larger ones out between its OpenMP threads, which spin and
      wait for one another: with two threads on a busy two-core machine, an EM iteration took
      3 to 8 times as long as with one)."""

    CHUNK = 32_768  # ATen's grain size: an element-wise operation below it is not shared out
    LOG_EVERY = 16  # opportunities: c' lies within [1e-6, 1e6] (EPS), 16 multiply in float64

    def __init__(
        self, correct: torch.Tensor, mask: torch.Tensor, skill: torch.Tensor, dtype: torch.dtype
    ):
        observed = mask.T.contiguous()
        c = correct.to(dtype).T.contiguous()
        zero = torch.zeros((), dtype=dtype, device=c.device)
        self.skill = skill
        self.observed = observed.to(dtype)
        self.right = torch.where(observed, c, zero)  # 1 where observed and right
        self.wrong = self.observed - self.right  # 1 where observed and wrong
        self.off = 1 - self.observed
        self.n_observed = self.observed.sum(0)  # per sequence
        self.n_right = self.right.sum(0)
        self.n_wrong = self.wrong.sum(0)
        t_len, n = c.shape
        self.log_every = self.LOG_EVERY if torch.finfo(dtype).max > 1e100 else 4  # float32
        self.ratio = torch.empty_like(self.right)  # r
        self.inverse = torch.empty_like(self.right)  # 1 / c'
        self.a0 = torch.empty_like(self.right)  # scaled alpha of "unknown"
        # Running products of c', one row per log_every opportunities.
        self.products = torch.empty(
            (t_len - 1) // self.log_every + 1, n, dtype=dtype, device=c.device
        )
        width = self.CHUNK if c.device.type == "cpu" else max(n, 1)
        self.parts = [slice(start, min(start + width, n)) for start in range(0, n, width)]
        # Opportunities that every sequence of a block has (wrong = 1 - right, off = 0 there):
        # fewer operations.
        self.full = [observed[:, part].all(1).tolist() for part in self.parts]
        self.scratch = [torch.empty(n, dtype=dtype, device=c.device) for _ in range(6)]

    @staticmethod
    def binary(correct: torch.Tensor, mask: torch.Tensor) -> bool:
        return bool(((correct == 0) | (correct == 1) | ~mask).all())

    @staticmethod
    def _per_skill(params: BKTParams) -> torch.Tensor:
        """[8, K]: 1 - prior, r(wrong), r(right), r(right) - r(wrong), 1 - learn, learn,
        log guess, log (1 - guess)."""
        prior, learn, slip, guess = params.prior, params.learn, params.slip, params.guess
        ratio_right, ratio_wrong = (1 - slip) / guess, slip / (1 - guess)
        return torch.stack(
            [
                1 - prior,
                ratio_wrong,
                ratio_right,
                ratio_right - ratio_wrong,
                1 - learn,
                learn,
                guess.log(),
                torch.log1p(-guess),
            ]
        )

    def _per_sequence(self, per_skill: torch.Tensor, part: slice) -> list[torch.Tensor]:
        """Each sequence's skill's values, for a block, row by row (small operations)."""
        skill = self.skill[part]
        return [row.index_select(0, skill) for row in per_skill]

    def _rows(self, part: slice, *arrays: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        return [array[:, part].unbind(0) for array in arrays]

    def forward(self, params: BKTParams) -> torch.Tensor:
        """The scaled forward pass: fills ratio, inverse and a0; returns the log-likelihood of
        every sequence [N]."""
        return self._forward(self._per_skill(params))

    def _forward(self, per_skill: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(self.n_observed)
        for part, full in zip(self.parts, self.full, strict=True):
            unknown0, r_wrong, r_right, r_gap, stay, _, log_guess, log_guess_not = (
                self._per_sequence(per_skill, part)
            )
            ratio, inverse, a0, right, wrong, off, products = self._rows(
                part,
                self.ratio,
                self.inverse,
                self.a0,
                self.right,
                self.wrong,
                self.off,
                self.products,
            )
            m0, c = (s[part] for s in self.scratch[:2])
            m0.copy_(unknown0)
            for t in range(len(ratio)):
                if full[t]:
                    torch.addcmul(r_wrong, right[t], r_gap, out=ratio[t])
                else:
                    torch.mul(right[t], r_right, out=ratio[t]).addcmul_(wrong[t], r_wrong)
                    ratio[t].add_(off[t])
                # c' = m0 + (1 - m0) · r; 1 where masked (r = 1).
                torch.addcmul(ratio[t], m0, ratio[t], value=-1, out=c).add_(m0)
                torch.reciprocal(c, out=inverse[t])
                block, step = divmod(t, self.log_every)
                if step == 0:
                    products[block].copy_(c)
                else:
                    products[block].mul_(c)
                torch.mul(m0, inverse[t], out=a0[t])
                # Through the transition: unknown stays with 1 - learn, known stays known.
                torch.mul(a0[t], stay, out=m0)
            log_likelihood = out[part]
            torch.mul(self.n_right[part], log_guess, out=log_likelihood)
            log_likelihood.addcmul_(self.n_wrong[part], log_guess_not)
            for product in products:
                # xlogy(1, x) = log x, with a kernel that ATen does not share out when small
                # (its log goes to MKL's, which does).
                log_likelihood.add_(torch.xlogy(1, product, out=c))
        return out

    def expected_counts(self, params: BKTParams) -> _Counts:
        """The forward pass, then the backward pass summed as it goes."""
        per_skill = self._per_skill(params)
        log_likelihood = self._forward(per_skill)
        sums = [torch.empty_like(log_likelihood) for _ in range(7)]
        for part, full in zip(self.parts, self.full, strict=True):
            *_, stay, learn, _, _ = self._per_sequence(per_skill, part)
            ratio, inverse, a0, observed, right = self._rows(
                part, self.ratio, self.inverse, self.a0, self.observed, self.right
            )
            b0, b1, n0, n1, g0, product = (s[part] for s in self.scratch[:6])
            first_known, learned, unknown_before, unknown, unknown_right, known, known_wrong = (
                s[part] for s in sums
            )
            for s in (learned, unknown_before, unknown, unknown_right):
                s.zero_()
            # At the last opportunity beta is 1: gamma(unknown) is alpha.
            last = len(ratio) - 1
            g0.copy_(a0[last])
            unknown.addcmul_(g0, observed[last])
            unknown_right.addcmul_(g0, right[last])
            b0.fill_(1)
            b1.fill_(1)
            for t in range(last - 1, -1, -1):
                # beta_t(1) = e_{t+1}(1) · beta_{t+1}(1) / c_{t+1}, and beta_t(0) =
                # (1 - learn) · e_{t+1}(0) · beta_{t+1}(0) / c_{t+1} + learn · beta_t(1).
                torch.mul(ratio[t + 1], b1, out=n1).mul_(inverse[t + 1])
                torch.mul(b0, inverse[t + 1], out=n0).mul_(stay).addcmul_(learn, n1)
                b0, n0, b1, n1 = n0, b0, n1, b1
                torch.mul(a0[t], b0, out=g0)
                # Expected unknown(t) → known(t+1): alpha_t(0) · learn · beta_t(1), counted (as
                # unknown(t) itself) only when t + 1 is a real observation.
                torch.mul(a0[t], b1, out=product)
                if full[t + 1]:
                    unknown_before.add_(g0)
                    learned.add_(product)
                else:
                    unknown_before.addcmul_(g0, observed[t + 1])
                    learned.addcmul_(product, observed[t + 1])
                if full[t]:
                    unknown.add_(g0)
                else:
                    unknown.addcmul_(g0, observed[t])
                unknown_right.addcmul_(g0, right[t])
            torch.sub(1, g0, out=first_known)
            learned.mul_(learn)
            # gamma(known) = 1 - gamma(unknown) at every opportunity.
            torch.sub(self.n_observed[part], unknown, out=known)
            torch.sub(self.n_wrong[part], unknown, out=known_wrong).add_(unknown_right)
        return _Counts(*sums, log_likelihood=log_likelihood)


def _total(values: torch.Tensor) -> float:
    """values.sum(); on a CPU in blocks that ATen does not share out between threads."""
    if values.device.type != "cpu":
        return float(values.sum())
    step = _TimeMajor.CHUNK
    return sum(float(values[i : i + step].sum()) for i in range(0, len(values), step))


def fit(
    correct: torch.Tensor,
    mask: torch.Tensor,
    skill: torch.Tensor,
    n_skills: int,
    *,
    init: BKTParams | None = None,
    max_iterations: int = 200,
    tolerance: float = 1e-7,
) -> FitResult:
    """EM until the mean log-likelihood per observation improves by less than `tolerance`."""
    dtype = init.prior.dtype if init is not None else torch.float64
    correct = correct.to(dtype)
    mask = mask.bool()
    params = init or BKTParams.uniform(n_skills, dtype=dtype, device=correct.device)
    observations = int(mask.sum())
    per_skill = torch.zeros(n_skills, dtype=dtype, device=correct.device)

    def by_skill(values: torch.Tensor) -> torch.Tensor:
        return per_skill.clone().index_add_(0, skill, values)

    sequences = by_skill(torch.ones(len(skill), dtype=dtype, device=correct.device))
    if _TimeMajor.binary(correct, mask):
        data = _TimeMajor(correct, mask, skill, dtype)
        expected_counts = data.expected_counts
    else:  # answers between 0 and 1: the general (slower) pass
        data = None
        expected_counts = functools.partial(_counts_by_forward_backward, correct, mask, skill)
    previous = None
    converged = False
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        counts = expected_counts(params)
        prior = by_skill(counts.first_known) / sequences.clamp_min(1)
        learn = by_skill(counts.learned) / by_skill(counts.unknown_before).clamp_min(EPS)
        guess = by_skill(counts.unknown_right) / by_skill(counts.unknown).clamp_min(EPS)
        slip = by_skill(counts.known_wrong) / by_skill(counts.known).clamp_min(EPS)
        params = BKTParams(
            prior=prior.clamp(EPS, 1 - EPS),
            learn=learn.clamp(EPS, 1 - EPS),
            slip=slip.clamp(EPS, MAX_SLIP_GUESS),
            guess=guess.clamp(EPS, MAX_SLIP_GUESS),
        )
        mean = _total(counts.log_likelihood) / observations if observations else math.nan
        if previous is not None and abs(mean - previous) < tolerance:
            converged = True
            break
        previous = mean
    if data is not None:
        log_likelihood = data.forward(params)
    else:
        log_likelihood = _counts_by_forward_backward(correct, mask, skill, params).log_likelihood
    return FitResult(params, _total(log_likelihood), iterations, converged)


def update(mastery: float, correct: bool, *, learn: float, slip: float, guess: float) -> float:
    """One learner's P(knows the skill) after one more observation: Bayes on the answer, then
    the chance to learn. A fixed handful of arithmetic operations, whatever came before."""
    if correct:
        known = mastery * (1 - slip)
        posterior = known / (known + (1 - mastery) * guess)
    else:
        known = mastery * slip
        posterior = known / (known + (1 - mastery) * (1 - guess))
    return posterior + (1 - posterior) * learn


def log_likelihood(
    params: BKTParams, correct: torch.Tensor, mask: torch.Tensor, skill: torch.Tensor
) -> float:
    """log P(every sequence | params), as `fit` computes it, for any parameters (to compare
    parameters fitted elsewhere on the same data)."""
    dtype = params.prior.dtype
    correct, mask = correct.to(dtype), mask.bool()
    if _TimeMajor.binary(correct, mask):
        return _total(_TimeMajor(correct, mask, skill, dtype).forward(params))
    return _total(_counts_by_forward_backward(correct, mask, skill, params).log_likelihood)


def _one_step_ahead(params, correct, mask, skill) -> tuple[torch.Tensor, torch.Tensor]:
    """predict()'s P(right) [N, T], and each sequence's p_known after its last observation [N]
    (what `update` gives, observation by observation)."""
    dtype = params.prior.dtype
    correct = correct.to(dtype)
    mask = mask.bool()
    learn, slip, guess = params.learn[skill], params.slip[skill], params.guess[skill]
    known = params.prior[skill].clone()
    out = torch.zeros(correct.shape, dtype=dtype, device=correct.device)
    for t in range(correct.shape[1]):
        p_right = known * (1 - slip) + (1 - known) * guess
        out[:, t] = p_right
        right = correct[:, t] > 0.5
        posterior = torch.where(right, known * (1 - slip) / p_right, known * slip / (1 - p_right))
        known = torch.where(mask[:, t], posterior + (1 - posterior) * learn, known)
    return torch.where(mask, out, torch.zeros_like(out)), known


def predict(
    params: BKTParams, correct: torch.Tensor, mask: torch.Tensor, skill: torch.Tensor
) -> torch.Tensor:
    """One step ahead: P(right) at each opportunity [N, T] given the sequence's earlier
    observations only, p_known · (1 - slip) + (1 - p_known) · guess, with p_known the prior at
    the first opportunity and then `update`'s after each observation (Bayes on the answer, then
    the chance to learn), for every sequence at once. 0 where the mask is off; a masked
    opportunity leaves p_known as it was."""
    return _one_step_ahead(params, correct, mask, skill)[0]


def mastery_after(
    params: BKTParams, correct: torch.Tensor, mask: torch.Tensor, skill: torch.Tensor
) -> torch.Tensor:
    """Each sequence's P(known) after its last observation (and its chance to learn) [N]: the
    same numbers as `update` applied observation by observation."""
    return _one_step_ahead(params, correct, mask, skill)[1]


def simulate(
    params: BKTParams, *, learners: int, opportunities: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Answers drawn from the model with `params`: every learner on every skill, `opportunities`
    each. Returns (correct, mask, skill) as `fit` takes them; sequences are skill-major."""
    n_skills = len(params.prior)
    skill = torch.arange(n_skills).repeat_interleave(learners)
    n = len(skill)
    dtype = params.prior.dtype

    def draw(p: torch.Tensor) -> torch.Tensor:
        return torch.rand(p.shape, generator=generator, dtype=dtype) < p

    knows = draw(params.prior[skill])
    correct = torch.empty(n, opportunities, dtype=dtype)
    for t in range(opportunities):
        p_right = torch.where(knows, 1 - params.slip[skill], params.guess[skill])
        correct[:, t] = draw(p_right).to(dtype)
        knows = knows | draw(params.learn[skill])
    return correct, torch.ones(n, opportunities, dtype=torch.bool), skill


def mastery_percent(probability: float) -> int:
    """A mastery probability as the whole percentage every page, answer and sentence shows:
    rounded down, so that a skill shows MASTERY_THRESHOLD's percentage or more exactly when it
    counts as mastered (0.949 is 94%, not a 95% without the "mastered" badge). The rounding to
    6 places first keeps 0.29 (28.999999... in binary) at 29."""
    return max(0, min(100, math.floor(round(probability * 100, 6))))
