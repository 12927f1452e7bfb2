"""Statistics of a comparison over seeds: what tools/compare.py reports beside each mean.

A cell of the leaderboard (a backbone on a task) is trained once per seed; its spread over seeds is
the noise any difference between backbones has to beat.

- :func:`summarize`: mean, sample standard deviation (``ddof=1``) and the number of runs.
- :func:`rank_group`: the backbones not significantly different from the task's best: Welch's
  t-test (two-sided, unequal variances) of each against the one with the best mean, with Holm's
  step-down correction over those comparisons, at ``alpha``. It assumes each backbone's results are
  independent draws from a normal distribution (seeds are independent; validation images are shared
  by every run, so this is the spread due to training, not to the choice of validation set). With
  few seeds the test is weak: a backbone in the group is *not shown to be worse*, not shown equal.
- :func:`separation`: how well the task tells the backbones apart: the one-way ANOVA F statistic
  (between-backbone over within-backbone variance of the runs) with its p-value, and eta squared, the
  share of the runs' total variance the backbone explains.

scipy is imported on use (the ``mm`` extra has it): ``import gatedvision`` stays torch and timm only.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

__all__ = ['Summary', 'summarize', 'rank_group', 'RankGroup', 'separation', 'Separation']


@dataclass
class Summary:
    mean: float
    std: float  # sample standard deviation over the runs; 0.0 for one run
    n: int


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError('summarize: no values (a cell without a finished run has no mean)')
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return Summary(mean, std, n)


@dataclass
class RankGroup:
    best: str
    tied: List[str]  # the best and every backbone not significantly different from it, best first
    p_values: Dict[str, float] = field(default_factory=dict)  # Holm-adjusted, against the best
    test: str = "Welch's t-test against the best, two-sided, Holm-corrected"


def _welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy import stats
    sa, sb = summarize(a), summarize(b)
    if sa.std == 0 and sb.std == 0:  # no spread at all: equal means tie, others differ
        return 1.0 if sa.mean == sb.mean else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def rank_group(runs: Dict[str, Sequence[float]], higher_is_better: bool = True,
               alpha: float = 0.05) -> Optional[RankGroup]:
    """The group of backbones tied with the best; ``None`` when it cannot be tested (fewer than two
    backbones, or a backbone with fewer than two runs).

    Args:
        runs: each backbone's metric values, one per seed.
        higher_is_better: ``False`` for a loss- or error-like metric.
        alpha: the family-wise error rate of the comparisons with the best.
    """
    if len(runs) < 2 or any(len(v) < 2 for v in runs.values()):
        return None
    sign = 1 if higher_is_better else -1
    best = max(runs, key=lambda k: sign * summarize(runs[k]).mean)
    raw = {k: _welch_p(runs[best], v) for k, v in runs.items() if k != best}
    # Holm: the i-th smallest of m p-values is compared with alpha / (m - i); the first one kept
    # stops the rejections. Adjusted p-values: running maximum of (m - i) * p, capped at 1.
    adjusted, running = {}, 0.0
    for i, (k, p) in enumerate(sorted(raw.items(), key=lambda kv: kv[1])):
        running = max(running, min(1.0, (len(raw) - i) * p))
        adjusted[k] = running
    tied = [best] + sorted((k for k, p in adjusted.items() if p > alpha),
                           key=lambda k: -sign * summarize(runs[k]).mean)
    return RankGroup(best, tied, adjusted)


@dataclass
class Separation:
    f: float  # between-backbone mean square over within-backbone mean square
    p: float
    eta_squared: float  # share of the total variance of the runs explained by the backbone
    within_std: float  # pooled standard deviation over seeds


def separation(runs: Dict[str, Sequence[float]]) -> Optional[Separation]:
    """One-way ANOVA over backbones; ``None`` with fewer than two backbones or without a backbone
    with two runs (no within-backbone variance to compare with)."""
    groups = [list(v) for v in runs.values() if len(v)]
    n = sum(len(g) for g in groups)
    if len(groups) < 2 or n - len(groups) < 1:
        return None
    grand = math.fsum(x for g in groups for x in g) / n
    between = math.fsum(len(g) * (summarize(g).mean - grand) ** 2 for g in groups)
    within = math.fsum((x - summarize(g).mean) ** 2 for g in groups for x in g)
    df_b, df_w = len(groups) - 1, n - len(groups)
    total = between + within
    eta = between / total if total > 0 else 0.0
    if within == 0:
        f, p = (math.inf, 0.0) if between > 0 else (math.nan, 1.0)
    else:
        from scipy import stats
        f = (between / df_b) / (within / df_w)
        p = float(stats.f.sf(f, df_b, df_w))
    return Separation(f, p, eta, math.sqrt(within / df_w))
