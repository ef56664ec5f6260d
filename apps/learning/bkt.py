"""Bayesian Knowledge Tracing: each skill's four parameters fitted by EM (Baum-Welch) over every
learner's sequence of every skill at once, as batched tensor operations (PyTorch), and the update
of one learner's mastery after one observation, in constant time.

The model, per skill: a learner either knows the skill or not. Before the first opportunity they
know it with probability `prior`; after each opportunity an unknown skill becomes known with
probability `learn` (and a known one stays known); a learner who knows the skill answers wrong
with probability `slip`, one who does not answers right with probability `guess`.

Data: N sequences (one per learner and skill), padded to the longest, T opportunities:
`correct` [N, T] (1.0 right, 0.0 wrong), `mask` [N, T] (True where an observation is; padding
only at the end), `skill` [N] (the sequence's skill, 0..K-1). No Django here: the Celery task
and the services feed it tensors.
"""

from dataclasses import dataclass

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
    def uniform(cls, n_skills: int, *, prior=0.3, learn=0.1, slip=0.1, guess=0.2,
                dtype=torch.float64, device=None) -> "BKTParams":  # fmt: skip
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


def fit(correct: torch.Tensor, mask: torch.Tensor, skill: torch.Tensor, n_skills: int, *,
        init: BKTParams | None = None, max_iterations: int = 200,
        tolerance: float = 1e-7) -> FitResult:  # fmt: skip
    """EM until the mean log-likelihood per observation improves by less than `tolerance`."""
    dtype = init.prior.dtype if init is not None else torch.float64
    correct = correct.to(dtype)
    mask = mask.bool()
    params = init or BKTParams.uniform(n_skills, dtype=dtype, device=correct.device)
    observations = mask.sum()
    per_skill = torch.zeros(n_skills, dtype=dtype, device=correct.device)

    def by_skill(values: torch.Tensor) -> torch.Tensor:
        return per_skill.clone().index_add_(0, skill, values)

    sequences = by_skill(torch.ones(len(skill), dtype=dtype, device=correct.device))
    previous = None
    converged = False
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        gamma, learned, log_likelihood = _forward_backward(
            correct, mask, params.prior[skill], params.learn[skill], params.slip[skill],
            params.guess[skill],
        )  # fmt: skip
        m = mask.to(dtype)
        unknown, known = gamma[..., 0] * m, gamma[..., 1] * m
        # Transitions only between two real observations.
        between = m[:, 1:]
        prior = by_skill(gamma[:, 0, 1]) / sequences.clamp_min(1)
        learn = by_skill((learned * between).sum(-1)) / by_skill(
            (gamma[:, :-1, 0] * between).sum(-1)
        ).clamp_min(EPS)
        guess = by_skill((unknown * correct).sum(-1)) / by_skill(unknown.sum(-1)).clamp_min(EPS)
        slip = by_skill((known * (1 - correct)).sum(-1)) / by_skill(known.sum(-1)).clamp_min(EPS)
        params = BKTParams(
            prior=prior.clamp(EPS, 1 - EPS),
            learn=learn.clamp(EPS, 1 - EPS),
            slip=slip.clamp(EPS, MAX_SLIP_GUESS),
            guess=guess.clamp(EPS, MAX_SLIP_GUESS),
        )
        mean = float(log_likelihood.sum() / observations)
        if previous is not None and abs(mean - previous) < tolerance:
            converged = True
            break
        previous = mean
    *_, log_likelihood = _forward_backward(
        correct, mask, params.prior[skill], params.learn[skill], params.slip[skill],
        params.guess[skill],
    )  # fmt: skip
    return FitResult(params, float(log_likelihood.sum()), iterations, converged)


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
