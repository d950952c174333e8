"""Find, then train: `fit_one_cycle(n, lr_max='find')` trains exactly as `lr_find()` with the call's callbacks and weight decay, followed
by the same call with the suggestion; `fine_tune(n, base_lr='find')` as `lr_find()` on the frozen model then fastai's `fine_tune`; `FindLR`
on any call; bad input is a clear error that leaves the learner unchanged."""
import warnings
import numpy as np
import pytest
import torch
from fastai.callback.core import Callback
from fastai.torch_core import params
from lrfinder_cb.all import LRFinderWarning
from helpers import demo_learner, regression_learner, weights, assert_same_weights, quiet


class PeakLR(Callback):
    "The highest learning rate of the last parameter group seen in training, read from the optimizer's hyper-parameters"
    order = 99
    def before_fit(self): self.peak = 0.
    def after_batch(self):
        if self.training and not hasattr(self.learn, 'lr_finder'): self.peak = max(self.peak, self.opt.hypers[-1]['lr'])


def run(learn, method, *args, **kwargs):
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        return getattr(learn, method)(*args, **kwargs)


CALLS = dict(fit_one_cycle='lr_max', fit_flat_cos='lr', fit='lr', fit_sgdr='lr_max') # each call and its learning-rate argument
FINDING = ['fit_one_cycle'] # the calls whose learning rate takes 'find'; the others take `cbs=FindLR()`


def explicit_calls(method, args, path):
    "What the user does by hand on a fresh demo learner: `lr_find()`, then `method` at its suggestion; the result and the weights after"
    learn = demo_learner(0, path=path)
    found = run(learn, 'lr_find', show_plot=False)
    run(learn, method, *args, **{CALLS[method]: found.between})
    return found, weights(learn)


@pytest.mark.parametrize('method', FINDING)
def test_find_then_train_is_lr_find_then_the_same_call(method, tmp_path):
    arg = CALLS[method]
    args = (1, 1) if method == 'fit_sgdr' else (2,)
    one = demo_learner(0, path=tmp_path)
    peak = PeakLR()
    one.add_cb(peak)
    run(one, method, *args, **{arg: 'find'})
    res = one.recorder.suggested_lrs
    assert not res.no_clear_valley
    assert peak.peak == pytest.approx(res.between, rel=1e-6), "trained at the suggestion"
    found, trained = explicit_calls(method, args, tmp_path)
    assert found.between == res.between
    assert_same_weights(weights(one), trained)


def test_the_learning_rate_is_said_once_and_lr_find_kwargs_reach_the_range_test(tmp_path):
    learn = demo_learner(0, path=tmp_path)
    lines = []
    learn.logger = lines.append
    with learn.no_bar(), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        learn.fit_one_cycle(1, lr_max='find', lr_find_kwargs=dict(num_it=60, end_lr=1.))
    said = [l for l in lines if isinstance(l, str) and l.startswith('lr_find:')]
    assert said == [f"lr_find: fit_one_cycle trains at lr_max={learn.recorder.suggested_lrs.between:.3g} (between)"]
    rec = learn.recorder.suggested_lrs.record
    assert rec.num_it == 60 and rec.end_lr == 1.


def two_groups(path, seed=0):
    "The demo MLP with a body and a head, as a pretrained fastai learner has, so that freeze() freezes something"
    learn = demo_learner(seed, path=path)
    learn.splitter = lambda m: [params(m[0]), params(m[2])]
    return learn


def test_fine_tune_find_is_lr_find_then_fastais_fine_tune(tmp_path):
    "One range test on the frozen model (the rule benchmarks/fine_tune.py chose), then fastai's own fine_tune at its suggestion"
    one = two_groups(tmp_path)
    run(one, 'fine_tune', 1, base_lr='find', freeze_epochs=1)
    frozen = one.recorder.suggested_lrs
    two = two_groups(tmp_path)
    two.freeze()
    found = run(two, 'lr_find', show_plot=False)
    with quiet(two): type(two).fine_tune.fastai_method(two, 1, base_lr=found.between, freeze_epochs=1)
    assert found.between == frozen.between
    assert_same_weights(weights(one), weights(two))


def test_no_clear_valley_is_a_clear_error_unless_a_fallback_is_given(tmp_path):
    "Issue 28: no valley, no number: 'find' stops with the fixes named and the weights untouched; `fallback_lr` trains at it, and says so"
    learn = regression_learner(tmp_path, seed=0)
    with quiet(learn): learn.fit_one_cycle(10, 1e-2)
    before, lines, peak = weights(learn), [], PeakLR()
    learn.logger = lines.append
    with learn.no_bar(), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        with pytest.raises(ValueError, match=r"fit_one_cycle\(lr_max='find'\): the range test shows no rate to train at .*fallback_lr=") as e:
            learn.fit_one_cycle(1, lr_max='find')
        assert "the learning rate the model was trained with" in str(e.value) and 'untrained' not in str(e.value) # it was trained
        assert learn.recorder.suggested_lrs.no_clear_valley
        assert_same_weights(before, weights(learn))
        learn.fit_one_cycle(1, lr_max='find', fallback_lr=2e-3, cbs=peak)
    assert peak.peak == pytest.approx(2e-3)
    assert any(isinstance(l, str) and l == 'lr_find: fit_one_cycle trains at lr_max=0.002 (fallback_lr: no clear valley)' for l in lines)


def test_bad_input_is_a_clear_error_and_changes_nothing(tmp_path):
    learn = demo_learner(0, path=tmp_path)
    before = weights(learn)
    with pytest.raises(ValueError, match=r"lr_max='fnd': pass a number, a slice, None, or 'find'"): learn.fit_one_cycle(1, lr_max='fnd')
    with pytest.raises(ValueError, match="lr_find_kwargs are for the range test"): learn.fit_one_cycle(1, 1e-3, lr_find_kwargs={})
    with pytest.raises(ValueError, match="lr_find_kwargs must be a dict"): learn.fit_one_cycle(1, 'find', lr_find_kwargs=[1])
    for method in set(CALLS) - set(FINDING): # 'find' only where fastai users expect it; elsewhere the error names the replacement
        with pytest.raises(ValueError, match=r"add cbs=FindLR\(\) to the call"): getattr(learn, method)(1, **{CALLS[method]: 'find'})
    learn.dls.train.n = 0 # no training data: the range test says so, before anything moves
    with pytest.raises(ValueError), quiet(learn): learn.fit_one_cycle(1, lr_max='find')
    assert_same_weights(before, weights(learn))


def test_removed_keywords_name_their_replacement_before_anything_changes(tmp_path):
    """Issue 27 removed `lr_find(trial=)` and renamed `div_factor` to `div`: each old keyword, wherever it can be passed, is an error
    naming the new, raised before the learner changes (`fine_tune` checks before it freezes: freezing would create the optimizer)"""
    from lrfinder_cb.all import LRFinder, FindLR
    learn = demo_learner(0, path=tmp_path)
    before,opt,trainable = weights(learn),learn.opt,[p.requires_grad for p in learn.model.parameters()]
    calls = [(lambda: learn.lr_find(trial=True), r'learn\.trial_lrs\(res\)'),
             (lambda: learn.lr_find(div_factor=3), 'div_factor is now div'),
             (lambda: LRFinder(div_factor=3), 'div_factor is now div'), (lambda: LRFinder(trial=True), r'learn\.trial_lrs'),
             (lambda: learn.fit_one_cycle(1, lr_max='find', lr_find_kwargs=dict(trial=True)),
              r"lr_max='find': lr_find no longer runs trials"),
             (lambda: learn.fine_tune(1, base_lr='find', lr_find_kwargs=dict(div_factor=3)), r"base_lr='find': div_factor is now div"),
             (lambda: FindLR(lr_find_kwargs=dict(div_factor=3)), 'FindLR: div_factor is now div')]
    for call,message in calls:
        with pytest.raises(TypeError, match=message): call()
    with pytest.raises(TypeError, match="LRFinder got an unexpected keyword argument 'num_its'"): learn.lr_find(num_its=5)
    assert_same_weights(before, weights(learn))
    assert learn.opt is opt and [p.requires_grad for p in learn.model.parameters()] == trainable


def test_numbers_slices_and_per_group_arrays_go_to_fastai_untouched(tmp_path):
    "Only the string 'find' is ours: a per-group array (compared with 'find' it would be ambiguous) trains as with fastai alone"
    import fastai.callback.schedule
    for lr in (np.array([1e-4, 1e-3]), slice(1e-4, 1e-3), 1e-3):
        ours, theirs = two_groups(tmp_path), two_groups(tmp_path)
        run(ours, 'fit_one_cycle', 1, lr_max=lr)
        with quiet(theirs): type(theirs).fit_one_cycle.fastai_method(theirs, 1, lr_max=lr)
        assert_same_weights(weights(ours), weights(theirs))
    learn = two_groups(tmp_path)
    run(learn, 'fine_tune', 1, base_lr=np.float64(1e-3))
    assert getattr(learn.recorder, 'suggested_lrs', None) is None


# ---------- FindLR: the callback for pipelines whose training call cannot change ----------
from fastai.callback.training import GradientAccumulation
from fastai.callback.fp16 import MixedPrecision
from lrfinder_cb.all import FindLR


def assert_close_weights(a, b):
    "The same training up to rounding: a schedule scaled by a factor is not bit for bit the schedule built at the product"
    assert a.keys() == b.keys()
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=f"{k} differs")


@pytest.mark.parametrize('method', CALLS)
def test_findlr_trains_the_call_as_lr_find_then_the_call_with_the_suggestion(method, tmp_path):
    arg = CALLS[method]
    args = (1, 1) if method == 'fit_sgdr' else (2,)
    one = demo_learner(0, path=tmp_path)
    peak, finder = PeakLR(), FindLR()
    one.add_cb(peak)
    run(one, method, *args, **{arg: 1e-4}, cbs=finder) # the call's own peak, 1e-4, far from the suggestion
    res, = finder.results
    assert one.recorder.suggested_lrs is res and not res.no_clear_valley
    assert peak.peak == pytest.approx(res.between, rel=1e-9), "trained at the suggestion (read from the optimizer)"
    found, trained = explicit_calls(method, args, tmp_path)
    assert found.between == res.between
    assert_close_weights(weights(one), trained)
    assert not any(isinstance(cb, FindLR) for cb in one.cbs), "the fit's callbacks are gone with the fit"


def test_findlr_on_the_learner_under_fine_tune_is_fine_tune_find(tmp_path):
    "FindLR() under fine_tune is fine_tune(base_lr='find'); FindLR(when='every') adds a second range test after unfreeze()"
    one = two_groups(tmp_path)
    finder = FindLR()
    one.add_cb(finder)
    run(one, 'fine_tune', 1, freeze_epochs=1) # the pipeline's call: fastai's default base_lr
    two = two_groups(tmp_path)
    run(two, 'fine_tune', 1, base_lr='find', freeze_epochs=1)
    assert [r.between for r in finder.results] == [two.recorder.suggested_lrs.between]
    assert_close_weights(weights(one), weights(two))
    every = two_groups(tmp_path)
    finder = FindLR(when='every')
    run(every, 'fine_tune', 1, freeze_epochs=1, cbs=finder)
    assert len(finder.results) == 2 and finder.results[1].between != finder.results[0].between


def test_findlr_when_first_scales_later_fits_alike_and_when_unfreeze_waits(tmp_path):
    learn = two_groups(tmp_path)
    first, peak = FindLR(when='first'), PeakLR()
    learn.add_cbs([first, peak])
    run(learn, 'fit_one_cycle', 1, 1e-3)
    assert peak.peak == pytest.approx(first.results[0].between, rel=1e-9)
    run(learn, 'fit_one_cycle', 1, 1e-4) # no range test: the same factor, so a tenth of the first fit's peak
    assert len(first.results) == 1 and peak.peak == pytest.approx(first.results[0].between/10, rel=1e-9)
    learn = two_groups(tmp_path)
    after_unfreeze = FindLR(when='unfreeze')
    learn.add_cb(after_unfreeze)
    learn.freeze()
    peak = PeakLR()
    run(learn, 'fit_one_cycle', 1, 1e-3, cbs=peak)
    run(learn, 'fit_one_cycle', 1, 1e-3)
    assert len(after_unfreeze.results) == 0 and peak.peak == pytest.approx(1e-3), "no unfreeze yet: the fits as written"
    learn.unfreeze()
    run(learn, 'fit_one_cycle', 1, slice(1e-5, 1e-3), cbs=peak)
    res, = after_unfreeze.results
    assert peak.peak == pytest.approx(res.between, rel=1e-9)
    assert learn.opt.hypers[0]['lr'] < learn.opt.hypers[-1]['lr'], "the slice's ratio between groups is kept"


@pytest.mark.parametrize('extra', ['GradientAccumulation', 'MixedPrecision'])
def test_findlr_with_gradient_accumulation_and_mixed_precision_is_the_explicit_calls(extra, tmp_path):
    make = lambda: GradientAccumulation(n_acc=64) if extra == 'GradientAccumulation' else MixedPrecision()
    one = regression_learner(tmp_path, bs=16)
    finder = FindLR()
    run(one, 'fit_one_cycle', 2, 1e-4, cbs=[make(), finder])
    two = regression_learner(tmp_path, bs=16)
    cb = make()
    two.add_cb(cb)
    found = run(two, 'lr_find', show_plot=False)
    run(two, 'fit_one_cycle', 2, found.between)
    if extra == 'GradientAccumulation': assert found.record.effective_batch_size == 64, "the range test stepped once in 4 batches"
    assert finder.results[0].between == found.between
    assert_close_weights(weights(one), weights(two))


def test_findlr_leaves_a_range_test_alone_and_needs_a_fallback_without_a_valley(tmp_path):
    learn = demo_learner(0, path=tmp_path)
    finder = FindLR()
    learn.add_cb(finder)
    run(learn, 'lr_find', show_plot=False)
    assert finder.results == [], "a fit that is a range test is not given one"
    learn = regression_learner(tmp_path, seed=0)
    with quiet(learn): learn.fit_one_cycle(10, 1e-2)
    lines, peak, before = [], PeakLR(), weights(learn)
    learn.logger = lines.append
    with learn.no_bar(), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        with pytest.raises(ValueError, match="FindLR: the range test shows no rate to train at"):
            learn.fit_flat_cos(1, lr=3e-4, cbs=[FindLR(), peak])
        assert learn.recorder.suggested_lrs.no_clear_valley
        assert_same_weights(before, weights(learn))
        learn.fit_flat_cos(1, lr=3e-4, cbs=[FindLR(fallback_lr=1e-3), peak])
    assert peak.peak == pytest.approx(1e-3)
    assert any(isinstance(l, str) and l == 'lr_find: this fit trains at 0.001 (fallback_lr: no clear valley)' for l in lines)


def test_findlr_bad_input_is_a_clear_error_and_changes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"FindLR\(when='sometimes'\): when must be one of 'every', 'first', 'unfreeze'"): FindLR(when='sometimes')
    with pytest.raises(ValueError, match=r"FindLR: lr_find has no argument 'num_iter'; it takes start_lr, end_lr, num_it"):
        FindLR(lr_find_kwargs=dict(num_iter=50))
    with pytest.raises(ValueError, match="lr_find_kwargs must be a dict"): FindLR(lr_find_kwargs=50)
    learn = demo_learner(0, path=tmp_path)
    before = weights(learn)
    learn.dls.train.n = 0 # no training data: the range test says so, before anything moves
    with pytest.raises(ValueError, match="the training set of `learn.dls` has no batches"), quiet(learn):
        learn.fit_one_cycle(1, 1e-3, cbs=FindLR())
    assert_same_weights(before, weights(learn))
    assert not any(isinstance(cb, FindLR) for cb in learn.cbs)


@pytest.mark.parametrize('extra', ['GradientClip', 'wd', 'GradientAccumulation'])
def test_find_tests_what_the_call_trains(extra, tmp_path):
    "`fit_one_cycle(n, lr_max='find', cbs=..., wd=...)`: the range test runs with the call's callbacks and weight decay (fastai #893)"
    from fastai.callback.training import GradientClip
    call = dict(GradientClip=lambda: dict(cbs=GradientClip(0.1)), wd=lambda: dict(wd=0.3),
                GradientAccumulation=lambda: dict(cbs=GradientAccumulation(n_acc=64)))[extra]
    one = regression_learner(tmp_path, bs=16)
    run(one, 'fit_one_cycle', 1, lr_max='find', **call())
    res = one.recorder.suggested_lrs
    two = regression_learner(tmp_path, bs=16)
    found = run(two, 'lr_find', show_plot=False, **call())
    run(two, 'fit_one_cycle', 1, lr_max=found.between, **call())
    assert found.between == res.between and found.record.losses == res.record.losses
    assert_same_weights(weights(one), weights(two))
    bare = run(regression_learner(tmp_path, bs=16), 'lr_find', show_plot=False)
    assert bare.record.losses != res.record.losses, "without the call's settings the range test measures another training"
    if extra == 'GradientAccumulation': assert res.record.effective_batch_size == 64, "the range test stepped once in 4 batches"
    if extra == 'wd': assert one.opt.hypers[-1]['wd'] == 0.3
