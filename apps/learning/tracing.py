"""Knowledge tracing for a tenant: its observations as tensors, the BKT fit, and every learner's
mastery recomputed under the fitted parameters.

The fit sees every observation of the tenant at once (one sequence per learner and skill, all
skills together), as apps.learning.bkt expects; then one batched forward pass gives each
sequence's mastery after its last observation, which replaces the stored Mastery rows (the
constant-time update of services.mastery_observe keeps them current until the next fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from django.db import transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.learning import bkt
from apps.learning.models import Mastery, Observation, SkillParams


@dataclass(frozen=True)
class Sequences:
    correct: torch.Tensor  # [N, T]
    mask: torch.Tensor  # [N, T]
    skill: torch.Tensor  # [N] index into skill_ids
    keys: list[tuple]  # [N] (user_id, skill_id)
    skill_ids: list


def sequences_of(rows) -> Sequences:
    """rows: (user_id, skill_id, correct) in observation order."""
    by_key: dict[tuple, list[float]] = {}
    for user_id, skill_id, correct in rows:
        by_key.setdefault((user_id, skill_id), []).append(1.0 if correct else 0.0)
    keys = list(by_key)
    skill_ids = list(dict.fromkeys(skill_id for _, skill_id in keys))
    index = {skill_id: i for i, skill_id in enumerate(skill_ids)}
    longest = max((len(v) for v in by_key.values()), default=0)
    correct = torch.zeros(len(keys), longest, dtype=torch.float64)
    mask = torch.zeros(len(keys), longest, dtype=torch.bool)
    for n, key in enumerate(keys):
        values = by_key[key]
        correct[n, : len(values)] = torch.tensor(values, dtype=torch.float64)
        mask[n, : len(values)] = True
    skill = torch.tensor([index[s] for _, s in keys], dtype=torch.long)
    return Sequences(correct, mask, skill, keys, skill_ids)


def mastery_after(params: bkt.BKTParams, seqs: Sequences) -> torch.Tensor:
    """P(known) after each sequence's last observation (and its learning step): the same
    numbers as applying bkt.update observation by observation, for all sequences at once."""
    prior = params.prior[seqs.skill].to(torch.float64)
    learn = params.learn[seqs.skill].to(torch.float64)
    slip = params.slip[seqs.skill].to(torch.float64)
    guess = params.guess[seqs.skill].to(torch.float64)
    known = prior.clone()
    for t in range(seqs.correct.shape[1]):
        right = seqs.correct[:, t] > 0.5
        p_obs_known = torch.where(right, 1 - slip, slip)
        p_obs_unknown = torch.where(right, guess, 1 - guess)
        posterior = known * p_obs_known / (known * p_obs_known + (1 - known) * p_obs_unknown)
        stepped = posterior + (1 - posterior) * learn
        known = torch.where(seqs.mask[:, t], stepped, known)
    return known


@dataclass(frozen=True)
class FitSummary:
    skills: int
    learners: int
    observations: int
    log_likelihood: float | None
    iterations: int


@scopes_disabled()
def bkt_fit_tenant(tenant_id) -> FitSummary:
    """Fit the tenant's BKT parameters on all its observations; store them; recompute mastery."""
    rows = list(
        Observation.objects.filter(tenant_id=tenant_id)
        .order_by("id")
        .values_list("user_id", "skill_id", "correct")
    )
    seqs = sequences_of(rows)
    if not rows:
        return FitSummary(0, 0, 0, None, 0)
    result = bkt.fit(seqs.correct, seqs.mask, seqs.skill, len(seqs.skill_ids))
    params = result.params
    known = mastery_after(params, seqs)
    now = timezone.now()
    learners_per_skill: dict = {}
    observations_per_skill: dict = {}
    for n, (_user, skill_id) in enumerate(seqs.keys):
        learners_per_skill[skill_id] = learners_per_skill.get(skill_id, 0) + 1
        observations_per_skill[skill_id] = observations_per_skill.get(skill_id, 0) + int(
            seqs.mask[n].sum()
        )
    with transaction.atomic():
        for k, skill_id in enumerate(seqs.skill_ids):
            SkillParams.objects.update_or_create(
                skill_id=skill_id,
                defaults={
                    "tenant_id": tenant_id,
                    "prior": float(params.prior[k]),
                    "learn": float(params.learn[k]),
                    "slip": float(params.slip[k]),
                    "guess": float(params.guess[k]),
                    "learners": learners_per_skill[skill_id],
                    "observations": observations_per_skill[skill_id],
                    "log_likelihood": result.log_likelihood,
                    "fitted_at": now,
                },
            )
        current = {
            (m.user_id, m.skill_id): m
            for m in Mastery.objects.select_for_update().filter(tenant_id=tenant_id)
        }
        changed, added = [], []
        for n, key in enumerate(seqs.keys):
            count = int(seqs.mask[n].sum())
            row = current.get(key)
            if row is None:
                added.append(
                    Mastery(tenant_id=tenant_id, user_id=key[0], skill_id=key[1],
                            probability=float(known[n]), observations=count)
                )  # fmt: skip
            else:
                row.probability, row.observations, row.updated_at = float(known[n]), count, now
                changed.append(row)
        Mastery.objects.bulk_update(changed, ["probability", "observations", "updated_at"], 500)
        Mastery.objects.bulk_create(added, 500)
    return FitSummary(
        skills=len(seqs.skill_ids),
        learners=len({user_id for user_id, _ in seqs.keys}),
        observations=len(rows),
        log_likelihood=result.log_likelihood,
        iterations=result.iterations,
    )
