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
from django_scopes import scope

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


@dataclass(frozen=True)
class FitSummary:
    skills: int
    learners: int
    observations: int
    log_likelihood: float | None
    iterations: int


def bkt_fit_tenant(tenant_id) -> FitSummary:
    """Fit the tenant's BKT parameters on all its observations; store them; recompute mastery."""
    with scope(tenant=tenant_id):
        rows = list(
            Observation.objects.filter(tenant_id=tenant_id)
            .order_by("id")
            .values_list("user_id", "skill_id", "correct")
        )
        if not rows:
            return FitSummary(0, 0, 0, None, 0)
        seqs = sequences_of(rows)
        n_skills = len(seqs.skill_ids)
        result = bkt.fit(seqs.correct, seqs.mask, seqs.skill, n_skills)
        params = result.params
        known = bkt.mastery_after(params, seqs.correct, seqs.mask, seqs.skill)
        counts = seqs.mask.sum(dim=1)  # observations per sequence
        learners_per_skill = torch.bincount(seqs.skill, minlength=n_skills)
        observations_per_skill = torch.zeros(n_skills, dtype=counts.dtype).index_add_(
            0, seqs.skill, counts
        )
        now = timezone.now()
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
                        "learners": int(learners_per_skill[k]),
                        "observations": int(observations_per_skill[k]),
                        "log_likelihood": result.log_likelihood,
                        "fitted_at": now,
                    },
                )
            # One upsert: a learner's row is replaced, or made if a grade has not made it yet.
            Mastery.objects.bulk_create(
                [
                    Mastery(
                        tenant_id=tenant_id,
                        user_id=user_id,
                        skill_id=skill_id,
                        probability=float(known[n]),
                        observations=int(counts[n]),
                        updated_at=now,
                    )
                    for n, (user_id, skill_id) in enumerate(seqs.keys)
                ],
                batch_size=500,
                update_conflicts=True,
                unique_fields=["user", "skill"],
                update_fields=["probability", "observations", "updated_at"],
            )
        return FitSummary(
            skills=n_skills,
            learners=len({user_id for user_id, _ in seqs.keys}),
            observations=len(rows),
            log_likelihood=result.log_likelihood,
            iterations=result.iterations,
        )
