"""Suggestion rules on noisy, short, flat and early-stopped curves: property tests (hypothesis) and known answers."""
import math, warnings
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from lrfinder_cb.all import LRFinderRecord, LRFinderWarning, suggest, minimum, steep, valley, slide
from lrfinder_cb.suggest import between, edge, synthetic_curve, zero_lag_smooth

RULES = (between, edge, minimum, steep, valley, slide)


def record_from(lrs, losses, num_it=100, stop_reason=None):
    rec = LRFinderRecord(start_lr=float(lrs[0]) if len(lrs) else 1e-7, num_it=num_it)
    for lr, loss in zip(lrs, losses):
        if rec.add([lr], loss): break
    if stop_reason: rec.stop_reason = stop_reason
    return rec


curves = st.tuples(st.integers(1, 150), st.floats(0, 1), st.integers(0, 10_000), st.floats(-5, -1))


@settings(max_examples=150, deadline=None)
@given(curves)
def test_every_rule_stays_in_range_and_never_fails(spec):
    n, noise, seed, steepest = spec
    lrs, losses = synthetic_curve(n, noise=noise, seed=seed, steepest=10**steepest)
    for rule in RULES:
        lr, (x, y) = rule(lrs, losses, n)
        low = lrs.min()/10 if rule is minimum else lrs.min()
        assert low*(1 - 1e-12) <= lr <= lrs.max()*(1 + 1e-12) and x == lr and math.isfinite(y)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 120), st.floats(0, 2), st.integers(0, 10_000),
       st.sampled_from(['num_it', 'diverged', 'non_finite', 'aborted', 'end_of_fit']))
def test_suggest_never_none_never_raises_on_early_stopped_curves(n, noise, seed, reason):
    lrs, losses = synthetic_curve(max(n, 1), noise=noise, seed=seed)
    losses = losses[:n]
    if reason == 'non_finite' and n: losses = np.append(losses[:-1], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        res = suggest(record_from(lrs[:n], losses, stop_reason=reason), RULES)
    assert res is not None and len(res) == len(RULES)
    if res.verdict == 'none': assert all(math.isnan(v) for v in res) and res.lr is None and not res.points # no valley, no number
    else: assert all(math.isfinite(v) and v > 0 for v in res)
    for name, value in res._asdict().items():
        if name in res.points: assert res.points[name][0] == value


@pytest.mark.parametrize('rule', [between, edge])
def test_noisy_curves_move_our_rules_little(rule):
    "The answer on the noise-free curve, then with noise of 10% of the fall: ours stay within 0.3 decade in 95% of 100 draws, unlike steep"
    clean = math.log10(rule(*synthetic_curve(100))[0])
    moved = [abs(math.log10(rule(*synthetic_curve(100, noise=0.2, seed=s))[0]) - clean) for s in range(100)]
    assert np.percentile(moved, 95) < 0.3
    steep_clean = math.log10(steep(*synthetic_curve(100))[0])
    steep_moved = [abs(math.log10(steep(*synthetic_curve(100, noise=0.2, seed=s))[0]) - steep_clean) for s in range(100)]
    assert np.percentile(steep_moved, 95) > 2*np.percentile(moved, 95)


def test_zero_lag_smoothing_does_not_shift_the_minimum_like_an_ema():
    lrs, losses = synthetic_curve(100)
    true_min = lrs[np.argmin(losses)]
    ema = record_from(lrs, losses, num_it=1000)  # no stop: all 100 points
    lagged = lrs[np.argmin(ema.smoothed_losses)]
    zero_lag = lrs[np.argmin(zero_lag_smooth(lrs, losses))]
    assert abs(math.log10(zero_lag/true_min)) < 0.2 < abs(math.log10(lagged/true_min))


@pytest.mark.parametrize('case', ['flat', 'end_lr_too_small'])
def test_flat_curves_are_flagged(case):
    lrs = np.logspace(-7, 1, 100) if case == 'flat' else np.logspace(-7, -5, 100)
    noise = 0.02*np.random.default_rng(0).standard_normal(100)  # minibatch noise: a real loss is never smooth
    losses = 1 + 0.1*noise if case == 'flat' else synthetic_curve(100, end_lr=1e-5)[1] + noise
    with pytest.warns(LRFinderWarning, match='no clear valley'):
        res = suggest(record_from(lrs, losses, num_it=100), (valley, edge))
    assert res.no_clear_valley and len(res) == 2


def test_clear_valley_is_not_flagged():
    with warnings.catch_warnings():
        warnings.simplefilter('error', LRFinderWarning)
        res = suggest(record_from(*synthetic_curve(100, noise=0.05)), (valley, edge))
    assert not res.no_clear_valley and res.fall > 10


def test_trained_model_is_flagged(tmp_path):
    from helpers import demo_learner, quiet
    learn = demo_learner(0, path=tmp_path)
    with quiet(learn): learn.fit_one_cycle(40, 1e-2)  # converged: validation loss about 0.01
    with quiet(learn), pytest.warns(LRFinderWarning, match='no clear valley'):
        res = learn.lr_find(show_plot=False)
    assert res.no_clear_valley


@pytest.mark.parametrize('offset, scale', [(0., 1.), (-10., 1.), (0., 1e-3), (-3., 5.)])
def test_fall_and_flag_ignore_the_loss_offset_and_scale(offset, scale):
    "A negative or shifted loss (a log-likelihood) is neither flagged nor judged differently: fall is in units of noise"
    lrs, losses = synthetic_curve(100, noise=0.05, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter('error', LRFinderWarning)
        res = suggest(record_from(lrs, offset + scale*losses, num_it=1000), (valley, edge, between), skip_start=10)
        base = suggest(record_from(lrs, losses, num_it=1000), (valley, edge, between), skip_start=10)
    assert not res.no_clear_valley
    assert res.fall == pytest.approx(base.fall, rel=1e-6)
    assert list(res) == pytest.approx(list(base), rel=1e-9)


@pytest.mark.parametrize('stop_reason, mentions_end_lr', [('num_it', True), ('diverged', False), ('end_of_fit', False)])
def test_end_lr_hint_only_when_the_sweep_reached_it(stop_reason, mentions_end_lr):
    lrs = np.logspace(-7, 1, 100)
    losses = 1 + 0.002*np.random.default_rng(0).standard_normal(100)
    res = suggest(record_from(lrs, losses, num_it=100, stop_reason=stop_reason), (edge,), warn=False)
    assert res.no_clear_valley
    assert ('end_lr' in '; '.join(res.notes)) == mentions_end_lr


def _quiet_suggest(rec):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        return suggest(rec)


@settings(max_examples=60, deadline=None)
@given(st.integers(40, 200), st.floats(0.5, 6), st.floats(0, 0.3), st.integers(0, 10_000), st.floats(-100, 100), st.floats(1e-3, 1e3))
def test_a_curve_that_only_rises_has_no_valley_range_or_regions(n, growth, noise, seed, offset, scale):
    "Rising from the first step (start_lr already too high), at any offset and scale: no valley is claimed, and the note says why"
    lrs = 1e-3*(1e4)**(np.arange(n)/n)
    rng = np.random.default_rng(seed)
    losses = offset + scale*(np.exp(growth*np.arange(n)/n) + noise*rng.standard_normal(n))
    res = _quiet_suggest(record_from(lrs, losses, num_it=n))
    assert res.no_clear_valley and res.range is None and res.regions is None
    assert 'no clear valley' in repr(res)
    with pytest.raises(ValueError, match='no range'): res.slice()
    assert any('no clear valley' in note for note in res.notes), res.notes
    # the cause is named when the part of the curve the sweep saw rises clearly: over its first half, by twice the raw noise
    seen = len(res.curves['lag_free'][0])
    first = n//10 # the points `suggest` skips at the start
    truth = np.exp(growth*np.arange(n)/n)
    if seen >= 40 and truth[first + seen//2] - truth[first] > 2*noise: # shorter curves: the smoothing spans most of them
        assert any('never fell' in note and 'start_lr' in note for note in res.notes), res.notes


@settings(max_examples=60, deadline=None)
@given(st.integers(30, 200), st.floats(0, 0.1), st.integers(0, 10_000), st.floats(-3, 0))
def test_no_region_is_ever_zero_width(n, noise, seed, start):
    "A curve falling from its first point has no flat start: the region is left out, not reported empty"
    lrs, losses = synthetic_curve(n, noise=noise, seed=seed, start_lr=10**(start-4), steepest=10**start)
    res = _quiet_suggest(record_from(lrs, losses, num_it=n))
    for lo, hi in (res.regions or {}).values(): assert hi > lo


def test_nan_from_the_first_step_has_no_valley():
    res = _quiet_suggest(record_from([1e-7, 1e-6], [float('nan'), 1.], stop_reason='non_finite'))
    assert res.no_clear_valley and res.range is None
    assert any('no finite loss' in n for n in res.notes) and not any('already be trained' in n for n in res.notes)


@pytest.mark.parametrize('steepest', [1.5e-6, 2e-6])
def test_a_curve_falling_from_its_first_point_has_no_flat_sliver_and_its_slice_does_not_start_there(steepest):
    "The fall began before the sweep: no sliver of a flat region, and `slice()` does not start at the curve's first learning rate"
    from lrfinder_cb.core import LRFinderRecord
    lrs, losses = synthetic_curve(100, noise=0.01, steepest=steepest)
    rec = LRFinderRecord(num_it=100, stop_div=False)
    for lr, loss in zip(lrs, losses): rec.add([lr], loss)
    res = suggest(rec, warn=False)
    assert not res.no_clear_valley and 'flat' not in res.regions and all(b > a for a, b in res.regions.values())
    first, (lo, hi) = res.curves['lag_free'][0][0], res.range
    assert res.slice() == slice(lo, hi) and lo > first and lo >= hi/100


def test_a_range_whose_fall_starts_at_the_first_point_starts_at_hi_over_100():
    "Where the fall starts is unknown: the low end is the 10% point or fastai's fine_tune spread (hi/100), whichever is higher, never the first point"
    from lrfinder_cb.suggest import safe_range, _fall_done
    lrs = np.logspace(-6, 0, 60)
    falling = 2 - 1.5/(1 + np.exp(-3*(np.log10(lrs) + 6.2))) + 0.5*np.exp(3*(np.log10(lrs) + 1)).clip(0, 5) # falling at its first point
    lo, hi = safe_range(lrs, falling)
    assert lo == pytest.approx(max(lrs[_fall_done(falling, 0.1)], hi/100)) and lo > lrs[0]
    assert safe_range(lrs, falling, lr_mult=2)[0] == pytest.approx(hi/2) # a narrower spread sets the low end
