"""What fastai's own LR-finder tests and docs check, checked on ours the way a fastai user's code meets it (fastai's star imports, then ours),
the curves from user reports that broke finders, and the snapshot of a model too big for memory (issue 8)."""
import math, os, warnings
import numpy as np
import pytest
from torch import nn
from fastai.callback.core import Callback, CancelStepException
from lrfinder_cb.all import LRFinder, LRFinderWarning, minimum, steep, valley, slide
import lrfinder_cb.store as store_module
from helpers import demo_learner, regression_learner, weights, assert_same_weights, quiet, RaiseAt


def run(learn, **kwargs):
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        return learn.lr_find(show_plot=False, **kwargs)


def fresh_state(learn): return [k for s in learn.opt.state_dict()['state'] for k in s if k not in ('do_wd', 'force_train')]


# --- fastai's LR-finder tests: the same facts, on ours ---------------------------------------------------------------

def test_callback_in_fit_records_schedule_and_restores(tmp_path):
    learn = regression_learner(tmp_path)
    before = weights(learn)
    with quiet(learn): learn.fit(20, cbs=LRFinder(num_it=100))
    lrs, losses = learn.recorder.lrs, learn.recorder.losses
    assert 0 < len(lrs) <= 100 and len(lrs) == len(losses)
    rec = learn.recorder.lr_find_record
    if len(lrs) < 100: assert rec.stop_reason in ('diverged', 'non_finite')
    np.testing.assert_allclose(lrs, [1e-7*(10/1e-7)**(i/100) for i in range(len(lrs))], rtol=1e-12)
    assert getattr(learn.recorder, 'values', []) == []        # the recorder's history as before the range test (none yet)
    assert_same_weights(before, weights(learn))
    assert fresh_state(learn) == []                             # an optimizer with empty state, as fastai leaves


def test_lr_find_four_rules_unpack_and_leave_weights(tmp_path):
    learn = regression_learner(tmp_path)
    before = weights(learn)
    lr_min, lr_steep, lr_valley, lr_slide = run(learn, suggest_funcs=(minimum, steep, valley, slide))
    assert all(1e-8 < lr < 10 for lr in (lr_min, lr_steep, lr_valley, lr_slide))
    assert_same_weights(before, weights(learn))


@pytest.mark.parametrize('order', ['fastai first', 'ours first'])
def test_star_imports_give_ours_whatever_the_order(order):
    "A course notebook star-imports fastai and ours; in either order `LRFinder`, the rules and `SuggestionMethod` are ours"
    lines = ["from fastai.vision.all import *", "from lrfinder_cb.all import *"]
    namespace = {}
    exec("\n".join(lines if order == 'fastai first' else lines[::-1]), namespace)
    assert namespace['LRFinder'] is LRFinder and namespace['valley'] is valley
    assert namespace['SuggestionMethod'].Valley is valley


def test_namedtuple_api(tmp_path):
    res = run(regression_learner(tmp_path), suggest_funcs=(valley, steep))
    assert res._fields == ('valley', 'steep') and res == tuple(res)
    assert res._replace(valley=1e-3) == (1e-3, res.steep)
    assert type(res)._make([1., 2.])._asdict() == {'valley': 1., 'steep': 2.}


def test_no_suggest_funcs_returns_none_as_fastai(tmp_path):
    learn = regression_learner(tmp_path)
    assert run(learn, suggest_funcs=None) is None
    assert learn.recorder.lr_find_record.n_recorded > 0


def test_every_rule_readable_on_a_default_result(tmp_path):
    res = run(regression_learner(tmp_path))
    assert res._fields == ('between',)
    for name in ('valley', 'minimum', 'steep', 'slide'):
        assert 1e-8 < getattr(res, name) < 10
    assert res.valley == pytest.approx(run(regression_learner(tmp_path), suggest_funcs=(valley,)).valley)


def test_per_group_ranges_with_different_ratios(tmp_path):
    two = lambda m: [list(m[0].parameters()), list(m[1:].parameters())]
    learn = regression_learner(tmp_path, splitter=two)
    res = run(learn, start_lr=np.array([1e-7, 1e-6]), end_lr=np.array([1., 1.]), num_it=50, stop_div=False)
    group_lrs = np.array(learn.recorder.lr_find_record.group_lrs)
    i = np.arange(len(group_lrs))
    np.testing.assert_allclose(group_lrs[:, 0], 1e-7*1e7**(i/50), rtol=1e-9)
    np.testing.assert_allclose(group_lrs[:, 1], 1e-6*1e6**(i/50), rtol=1e-9)
    assert learn.recorder.lrs == pytest.approx(group_lrs[:, 1].tolist())     # plots and suggestions read the last group
    assert res.per_group()[1] == pytest.approx(res[0])


def test_num_it_below_six_runs_as_asked_with_a_warning(tmp_path):
    learn = regression_learner(tmp_path)
    with quiet(learn), pytest.warns(LRFinderWarning, match='num_it \\(3\\) is below 6'):
        learn.lr_find(num_it=3, show_plot=False, stop_div=False)
    assert learn.recorder.lr_find_record.n_recorded == 3


def test_string_rule_is_caught_before_the_run(tmp_path):
    learn = regression_learner(tmp_path)
    with pytest.raises(ValueError, match="suggest_funcs .* got 'valley': pass the function valley"):
        learn.lr_find(suggest_funcs=('valley',), show_plot=False)
    assert learn.opt is None and not hasattr(learn.recorder, 'lr_find_record')


def test_plot_before_any_range_test_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match='run `learn.lr_find\\(\\)`'): regression_learner(tmp_path).recorder.plot_lr_find()


# --- curves from user reports ------------------------------------------------------------------------------------

def test_after_training_the_sweep_runs_on(tmp_path):
    "fastai #3658: after a few epochs the loss is small and noisy, and `4 x best` stopped the run after 3 points"
    learn = demo_learner(0, path=tmp_path)
    with quiet(learn): learn.fit_one_cycle(3, 1e-2)
    res = run(learn)
    rec = learn.recorder.lr_find_record
    assert rec.n_recorded > 50, rec
    assert res.verdict == 'none' and math.isnan(res.edge) and res.lr is None, "a trained model's flat curve: no number (issue 28)"


def test_negative_loss_sweeps_as_the_positive_one(tmp_path, fastai_lr_find):
    "fastai #962: a loss with a negative offset made `4 x best` smaller than best, stopping at once, and looked flat"
    shifted = lambda out, y: nn.functional.cross_entropy(out, y) - 5
    plain, negative = demo_learner(0, path=tmp_path), demo_learner(0, path=tmp_path)
    negative.loss_func = shifted
    res_plain, res_negative = run(plain), run(negative)
    rec_plain, rec_negative = plain.recorder.lr_find_record, negative.recorder.lr_find_record
    assert rec_negative.n_recorded == rec_plain.n_recorded > 50
    assert not res_negative.no_clear_valley
    assert res_negative.edge == pytest.approx(res_plain.edge, rel=1e-4)
    theirs = demo_learner(0, path=tmp_path)
    theirs.loss_func = shifted
    with quiet(theirs), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        fastai_lr_find(theirs, show_plot=False, suggest_funcs=None)  # with its rules it even crashes on the empty curve
    assert len(theirs.recorder.losses) <= 3, "fastai's `4 x best` should stop a negative loss at once"


class SkipHalf(Callback):
    "Skip every other optimizer step, as mixed precision does after gradient overflows"
    order = 0
    def __init__(self): self.n = 0
    def before_step(self):
        self.n += 1
        if self.n % 2: raise CancelStepException()


def test_half_the_steps_skipped_still_reaches_num_it(tmp_path):
    learn = demo_learner(0, path=tmp_path)
    learn.add_cb(SkipHalf())
    run(learn, num_it=100, stop_div=False, end_lr=1.)
    rec = learn.recorder.lr_find_record
    assert (rec.n_recorded, rec.stop_reason) == (100, 'num_it')
    assert rec.lrs[-1] == pytest.approx(1e-7*(1/1e-7)**(99/100))


# --- big models ----------------------------------------------------------------------------------------------------

def test_disk_snapshot_restores_after_an_exception_and_cleans_up(tmp_path, monkeypatch):
    made = []
    real = store_module.DiskStore
    monkeypatch.setattr(store_module, 'DiskStore', lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    learn = regression_learner(tmp_path)
    with quiet(learn): learn.fit(1, 1e-2)
    before = weights(learn)
    learn.add_cb(RaiseAt(5, RuntimeError('boom')))
    with quiet(learn), pytest.raises(RuntimeError, match='boom'): learn.lr_find(show_plot=False, snapshot='disk')
    assert_same_weights(before, weights(learn))
    assert len(made) == 1 and not os.path.exists(made[0].dir)


def test_auto_falls_back_to_disk_when_memory_is_short(tmp_path, monkeypatch):
    learn = regression_learner(tmp_path)
    with quiet(learn): learn.fit(1, 1e-2)
    before = weights(learn)
    monkeypatch.setattr(store_module, 'available_memory', lambda: store_module.snapshot_bytes(learn))
    with quiet(learn), pytest.warns(LRFinderWarning, match='temporary folder on disk'):
        learn.lr_find(show_plot=False, num_it=30)
    assert_same_weights(before, weights(learn))


def test_no_room_anywhere_is_a_clear_error_before_anything_runs(tmp_path, monkeypatch):
    learn = regression_learner(tmp_path)
    before = weights(learn)
    monkeypatch.setattr(store_module, 'available_memory', lambda: 100)
    monkeypatch.setattr(store_module.shutil, 'disk_usage', lambda path: type('U', (), {'free': 10})())
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        with pytest.raises(MemoryError, match='set TMPDIR to a bigger disk'): learn.lr_find(show_plot=False)
    assert_same_weights(before, weights(learn))


def test_snapshot_mode_is_checked(tmp_path):
    with pytest.raises(ValueError, match="snapshot \\('ram'\\) must be one of"): LRFinder(snapshot='ram')
