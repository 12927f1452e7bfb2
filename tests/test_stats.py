"""gatedvision.stats: the numbers tools/compare.py puts beside each mean, against known answers."""
import math

import pytest
from scipy import stats as sps

from gatedvision.stats import rank_group, separation, summarize


def test_summary_is_the_mean_and_the_sample_std():
    s = summarize([70.61, 74.54, 75.55])
    assert s.n == 3 and s.mean == pytest.approx(73.5667, abs=1e-4)
    assert s.std == pytest.approx(2.6099, abs=1e-4)  # ddof=1
    assert summarize([5.0]).std == 0.0
    with pytest.raises(ValueError, match='no values'):
        summarize([])


def test_rank_group_keeps_ties_and_drops_clear_losers():
    runs = {'vig': [88.14, 87.08, 88.22], 'biformer': [88.4, 87.9, 88.9],  # within each other's noise
            'hornet': [70.61, 74.54, 75.55]}                            # 14 mIoU below, std 2.6
    g = rank_group(runs)
    assert g.best == 'biformer' and g.tied == ['biformer', 'vig']
    # Holm over two comparisons: the smaller p-value doubled, the larger kept (and never below it)
    p_vig = sps.ttest_ind(runs['biformer'], runs['vig'], equal_var=False).pvalue
    p_hor = sps.ttest_ind(runs['biformer'], runs['hornet'], equal_var=False).pvalue
    assert p_hor < p_vig
    assert g.p_values['hornet'] == pytest.approx(2 * p_hor)
    assert g.p_values['vig'] == pytest.approx(max(p_vig, 2 * p_hor))
    # lower is better: the order turns round
    assert rank_group(runs, higher_is_better=False).best == 'hornet'
    # one run of a backbone: nothing to test
    assert rank_group({'a': [1.0, 2.0], 'b': [3.0]}) is None
    assert rank_group({'a': [1.0, 2.0]}) is None


def test_holm_correction_keeps_a_family_that_one_test_alone_would_drop():
    # three backbones each clearly different from the best at p ~ 0.03: alone each would be dropped
    # at 0.05; Holm multiplies the smallest by 3, so borderline ones stay in the group
    best = [10.0, 10.2, 9.8]
    runs = {'best': best, 'a': [9.5, 9.7, 9.3], 'b': [9.45, 9.7, 9.35]}
    raw = {k: sps.ttest_ind(best, v, equal_var=False).pvalue for k, v in runs.items() if k != 'best'}
    assert all(p < 0.05 for p in raw.values()) and all(p > 0.025 for p in raw.values())
    assert set(rank_group(runs).tied) == {'best', 'a', 'b'}


def test_separation_is_scipys_one_way_anova_with_eta_squared():
    runs = {'a': [1.0, 2.0, 3.0], 'b': [2.0, 3.0, 4.0], 'c': [6.0, 7.0, 8.0]}
    s = separation(runs)
    ref = sps.f_oneway(*runs.values())
    assert s.f == pytest.approx(ref.statistic) and s.p == pytest.approx(ref.pvalue)
    # between: 3 * ((2-13/3)^2 + (3-13/3)^2 + (7-13/3)^2) = 42; within: 3 * 2 = 6
    assert s.eta_squared == pytest.approx(42 / 48) and s.within_std == pytest.approx(1.0)
    # no spread within the backbones: infinitely separated (or not at all)
    assert math.isinf(separation({'a': [1.0, 1.0], 'b': [2.0, 2.0]}).f)
    assert separation({'a': [1.0], 'b': [2.0]}) is None  # one run each: no within variance
