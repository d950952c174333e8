"""Trials at candidate learning rates (issue 19): each trial trains as fastai's own schedule would, from the same weights and data order;
the learner is left exactly as it was on every exit path and with real learners; the decision is invariant to the loss's offset and
scale and never picks a diverged candidate (property tests)."""
import math, os
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from fastai.callback.core import Callback
from fastai.callback.progress import CSVLogger
from fastai.callback.tracker import SaveModelCallback
from fastai.callback.training import GradientAccumulation
from lrfinder_cb.snapshot import reseed
from lrfinder_cb.trial import TrialResult
from lrfinder_cb.core import LRFinderWarning
from helpers import regression_learner, demo_learner, weights, assert_same_weights, opt_state, assert_same_opt_state, RaiseAt, quiet
from test_isolation import vision, tabular, recurrent

FASTAI_CALL = dict(one_cycle='fit_one_cycle', flat_cos='fit_flat_cos', constant='fit')


@pytest.mark.parametrize('recipe', FASTAI_CALL)
def test_a_trial_trains_as_fastais_own_call(tmp_path, recipe):
    "A trial of 2 epochs' steps at lr 1e-2 reaches the validation loss of fastai's `fit_one_cycle(2, 1e-2)` (or `fit_flat_cos`, `fit`) on the same data order"
    learn = regression_learner(tmp_path, seed=1)
    with quiet(learn): res = learn.trial_lrs(None, candidates=[1e-2], n_steps=2*len(learn.dls.train), recipe=recipe, repeat=False, valid_batches=100)
    fastai = regression_learner(tmp_path, seed=1)
    reseed(fastai.dls, 2000) # the trial's data order (`seed`)
    with quiet(fastai): getattr(fastai, FASTAI_CALL[recipe])(2, 1e-2)
    assert res.losses[0] == pytest.approx(float(fastai.validate()[0]), rel=1e-5)


def test_trials_are_their_own_call(tmp_path):
    "`lr_find` knows nothing of trials: `trial=` names the call that replaced it; `trial_lrs` keeps its result on the range test's"
    learn = demo_learner(0, path=tmp_path)
    with pytest.raises(TypeError, match=r"call learn.trial_lrs\(res\)"): learn.lr_find(show_plot=False, trial=True)
    with quiet(learn):
        plain = learn.lr_find(show_plot=False)
        separate = learn.trial_lrs(plain, n_steps=10)
    assert plain.trial is separate and learn.recorder.suggested_lrs.trial is separate


def test_gradient_accumulation_counts_optimizer_steps(tmp_path):
    "Under `GradientAccumulation`, `n_steps` counts optimizer steps, not batches"
    class Steps(Callback):
        fits = [] # on the class: each trial puts back its callbacks' own state
        def before_fit(self): self.fits.append(0)
        def after_step(self): self.fits[-1] += 1
    steps = Steps()
    learn = regression_learner(tmp_path, cbs=[GradientAccumulation(n_acc=48), steps]) # bs 16: 3 batches a step
    with quiet(learn), pytest.warns(LRFinderWarning, match='only 4 points'): res = learn.lr_find(num_it=10, show_plot=False)
    steps.fits.clear()
    with quiet(learn): trial = learn.trial_lrs(res, n_steps=7)
    assert steps.fits == [7]*4 and all(len(c) == 7 for c in trial.curves)


EXITS = dict(exception=RuntimeError("boom"), ctrl_c=KeyboardInterrupt())

@pytest.mark.parametrize('exit', EXITS)
def test_an_interrupted_trial_leaves_the_learner_as_it_was(tmp_path, exit):
    "An exception or Ctrl-C in the third trial: it reaches the caller; weights, optimizer state and what training does next are unchanged"
    alone = regression_learner(tmp_path, dropout=0.2)
    with quiet(alone): alone.fit(1, 1e-2); alone.fit(1, 1e-2)
    learn = regression_learner(tmp_path, dropout=0.2)
    with quiet(learn), pytest.warns(LRFinderWarning, match='no clear valley'): # trained: candidates of our own
        learn.fit(1, 1e-2); res = learn.lr_find(num_it=20, show_plot=False)
    before_w, before_opt = weights(learn), opt_state(learn)
    learn.add_cb(RaiseAt(2*10 + 3, EXITS[exit])) # 10 steps a trial: fails in the third
    with pytest.raises(type(EXITS[exit])), quiet(learn): learn.trial_lrs(res, candidates=[1e-3, 1e-2, 1e-1], n_steps=10)
    learn.remove_cb(RaiseAt)
    assert_same_weights(before_w, weights(learn)); assert_same_opt_state(before_opt, opt_state(learn))
    assert all(cb.run for cb in learn.cbs) and not any(type(cb).__name__ == '_Trial' for cb in learn.cbs)
    with quiet(learn): learn.fit(1, 1e-2)
    assert_same_weights(weights(alone), weights(learn)) # the random generators and data order came back too


def test_logging_and_tracking_callbacks_stay_quiet_and_nothing_is_written(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(torch, 'save', lambda *a, **k: saved.append(a))
    learn = demo_learner(0, path=tmp_path).add_cbs([CSVLogger(), SaveModelCallback(fname='best')])
    monkeypatch.setattr(learn, 'save', lambda *a, **k: saved.append(a))
    with quiet(learn):
        res = learn.lr_find(show_plot=False)
        learn.trial_lrs(res, n_steps=30) # 30 steps: over an epoch (22 batches)
    assert res.trial is not None and len(res.trial.losses) == 3
    assert saved == [] and os.listdir(tmp_path) == []
    assert all(cb.run for cb in learn.cbs)


@pytest.mark.parametrize('make', [vision, tabular, recurrent], ids=['vision_resnet18', 'tabular', 'recurrent'])
def test_real_learners(tmp_path, make):
    "A range test with trials, then training: the same weights (BatchNorm statistics too) as the training alone"
    alone = make(tmp_path)
    with quiet(alone): alone.fit(1, 1e-3)
    learn = make(tmp_path)
    before = weights(learn)
    with quiet(learn):
        res = learn.lr_find(num_it=15, show_plot=False)
        learn.trial_lrs(res, n_steps=5, candidates=[1e-4, 1e-3, 1e-2])
    assert_same_weights(before, weights(learn))
    assert res.trial is not None and res.trial.lr in res.trial.lrs and all(len(c) == 5 for c in res.trial.curves)
    with quiet(learn): learn.fit(1, 1e-3)
    assert_same_weights(weights(alone), weights(learn))
    assert os.listdir(tmp_path) == []


def test_plot_on_given_axes_and_a_diverged_candidate(tmp_path):
    import matplotlib.pyplot as plt
    learn = regression_learner(tmp_path)
    with quiet(learn), pytest.warns(LRFinderWarning, match='no clear valley'):
        res = learn.lr_find(num_it=30, show_plot=False)
        learn.trial_lrs(res, n_steps=10, candidates=[1e-3, 1e-1, 1e2, 1e30])
    assert res.trial.losses[res.trial.lrs.index(1e30)] == math.inf and res.trial.lr not in (1e2, 1e30)
    fig, ax = plt.subplots()
    assert learn.recorder.plot_lr_find(ax=ax) is fig and len(fig.axes) == 1 # the caller's axes: the candidates only, as lines
    assert {l.get_xdata()[0] for l in ax.lines if len(l.get_xdata()) == 2 and l.get_xdata()[0] == l.get_xdata()[1]} >= set(res.trial.lrs)
    tax = res.trial.plot()
    diamonds = [l for l in tax.lines if l.get_marker() == 'D']
    assert len(diamonds) == len(res.trial.lrs) - 1 # no validation mark for the one that diverged
    bottom, top = tax.get_ylim() # from the curves' starts and lows: not squashed by the trial at 1e2, whose loss blew up
    assert res.trial.losses[res.trial.lrs.index(1e2)] > 1e3 and top < 100
    plt.close('all')


# --- The decision, on generated scores ----------------------------------------------------------------------------

scores = st.lists(st.one_of(st.floats(0.01, 10.), st.just(math.inf)), min_size=3, max_size=5)

def made(losses, repeat, margin):
    lrs = [10.**-(i + 1) for i in range(len(losses))][::-1]
    ref = lrs[len(lrs)//2]
    return TrialResult(lrs, losses, [np.array([])]*len(lrs), ref, repeat, margin, 10, 'one_cycle', 100, 0.)

@settings(max_examples=300, deadline=None, derandomize=True)
@given(scores, st.one_of(st.none(), st.floats(0.01, 10.)), st.floats(0., 4.), st.floats(-5., 5.), st.floats(0.1, 10.))
def test_the_decision(losses, repeat, margin, offset, scale):
    res = made(losses, repeat, margin)
    assert res.lr in res.lrs
    if res.clear: # a clear winner is finite and beats the suggestion by more than the margin
        # (as a gain: `suggestion_loss - margin*noise` rounds back to `suggestion_loss` when the noise is below its last digit)
        assert math.isfinite(res.winner_loss) and res.winner_loss <= res.suggestion_loss and res.gain > margin*(res.noise or 0.)
    else: assert res.lr == res.suggestion
    # the same decision for the same losses moved and scaled: it reads differences against the noise, not levels
    moved = made([offset + scale*l for l in losses], None if repeat is None else offset + scale*repeat, margin)
    # not where rounding decides: moving and scaling rounds differences below the last digit of the moved losses
    finite = [l for l in [*losses, *([] if repeat is None else [repeat])] if math.isfinite(l)]
    resolution = 1e-9*max([abs(offset + scale*l) for l in finite] + [1.])/scale
    gaps = [abs(a - b) for a in finite for b in finite if a != b] + [abs(res.gain - margin*(res.noise or 0.))]
    if min(gaps) > resolution: assert moved.lr == res.lr
    # a larger margin never makes a winner of a candidate a smaller one kept out
    assert made(losses, repeat, margin + 1.).lr in (res.lr, res.suggestion)
