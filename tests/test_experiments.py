"""The range-test experiments (issue 11): held learning rates, the batch-size sweep, the validation probe, fresh initial weights.
Each keeps lr_find's guarantees: the learner as it was, and the training that follows bit-identical to training without the test."""
import json, warnings
import numpy as np
import pytest
import torch
from lrfinder_cb.all import LRFinderWarning
from helpers import demo_learner, regression_learner, weights, assert_same_weights, quiet
from test_isolation import check_fit_after_lr_find_is_fit_alone
from test_cli import run as run_cli, LR_FIND


def find(learn, **kwargs):
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        return learn.lr_find(show_plot=False, **kwargs)


def test_steps_per_lr_schedule_and_points(tmp_path):
    learn = regression_learner(tmp_path)
    find(learn, num_it=60, steps_per_lr=4, stop_div=False, end_lr=1.)
    rec = learn.recorder.lr_find_record
    assert rec.n_recorded == 15 and len(rec.step_sds) == 15 and all(s >= 0 for s in rec.step_sds)
    np.testing.assert_allclose(rec.lrs, [1e-7*(1/1e-7)**(i/15) for i in range(15)], rtol=1e-12)


@pytest.mark.parametrize('kwargs', [dict(valid_every=3, valid_batches=2), dict(steps_per_lr=3), dict(n_runs=2, vary='init')],
                         ids=['valid_probe', 'steps_per_lr', 'vary_init'])
def test_fit_after_experiment_is_fit_alone(tmp_path, kwargs):
    check_fit_after_lr_find_is_fit_alone(lambda learn, **kw: find(learn, **kw, **kwargs), tmp_path)


def test_probe_reads_the_same_fixed_batches(tmp_path):
    "At learning rates too small to move the weights, every probe reads the same value: the loss of the first batches of dls.valid"
    learn = demo_learner(0, path=tmp_path)
    find(learn, start_lr=1e-12, end_lr=1e-11, num_it=20, valid_every=4, valid_batches=2)
    rec = learn.recorder.lr_find_record
    xs, ys = zip(*[b for _, b in zip(range(2), learn.dls.valid)])
    with torch.no_grad(): expected = np.mean([learn.loss_func(learn.model.eval()(x), y).item() for x, y in zip(xs, ys)])
    learn.model.train()
    assert len(rec.valid_losses) == 5
    np.testing.assert_allclose(rec.valid_losses, expected, rtol=1e-5)


def test_probe_without_validation_data_is_a_clear_error(tmp_path):
    learn = regression_learner(tmp_path)
    learn.dls.valid.n = 0
    before = weights(learn)
    with pytest.raises(ValueError, match='valid_every needs validation batches'): find(learn, valid_every=2)
    assert_same_weights(before, weights(learn))


def test_vary_init_varies_and_restores(tmp_path):
    learn = demo_learner(0, path=tmp_path)
    before = weights(learn)
    res = find(learn, n_runs=3, vary='init', num_it=40)
    assert_same_weights(before, weights(learn))
    first_losses = [r.record.losses[0] for r in res.runs]
    assert len(set(first_losses)) == 3, "every run should start from other weights"
    lo, hi = res.runs_band['between']
    assert lo <= hi and res.vary == 'init'


def test_vary_init_refuses_a_frozen_learner(tmp_path):
    learn = regression_learner(tmp_path, splitter=lambda m: [list(m[0].parameters()), list(m[1:].parameters())])
    learn.freeze()
    with pytest.raises(ValueError, match='frozen'): learn.lr_find(n_runs=2, vary='init', show_plot=False)


def test_batch_size_sweep_leaves_dls_and_training_alone(tmp_path):
    alone = demo_learner(0, path=tmp_path)
    with quiet(alone): alone.fit(1, 1e-2)
    swept = demo_learner(0, path=tmp_path)
    dls = swept.dls
    with quiet(swept), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        res = swept.lr_find_bs((32, 128), show_plot=False, num_it=40)
    assert swept.dls is dls and sorted(res) == [32, 128]
    assert [r.record.batch_size for r in res.values()] == [32, 128]
    with quiet(swept): swept.fit(1, 1e-2)
    assert_same_weights(weights(alone), weights(swept))


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_cli_exposes_the_experiments(tmp_path):
    out = run_cli(['--demo', '--num-it', '40', '--bs', '32,64', '--steps-per-lr', '2', '--valid-every', '4', '--json', 'bs.json', '--out', 'bs.png'], tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path/'bs.json').read_text())['by_batch_size']
    assert sorted(data) == ['32', '64'] and data['32']['record']['step_sds'] and data['64']['record']['valid_losses']
    assert (tmp_path/'bs.png').stat().st_size > 5000
    out = run_cli(['--demo', '--num-it', '40', '--runs', '2', '--vary', 'init', '--json', 'init.json'], tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path/'init.json').read_text())['vary'] == 'init'
    out = run_cli(['--demo', '--bs', '32,x'], tmp_path)
    assert out.returncode == 2 and "argument --bs: must be comma-separated whole numbers, 1 or more, such as 32,64,128 (got '32,x')" in out.stderr


@pytest.mark.parametrize('vary', ['order', 'init'])
def test_the_band_of_repeated_runs_surrounds_the_curve_drawn(vary):
    "The 10-90% band of n_runs is the band of the lag-free curve the plot draws solid, not of fastai's EMA"
    import warnings
    import numpy as np
    from lrfinder_cb.cli import demo_learner
    learn = demo_learner(0)
    with learn.no_bar(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = learn.lr_find(n_runs=3, vary=vary, show_plot=False)
    lrs, curve = res.curves['lag_free']
    band_lrs, low, high = res.curves['lag_free_band']
    assert np.array_equal(band_lrs, lrs)
    reached = np.isfinite(low)
    assert reached.mean() > 0.95 and np.all((low[reached] <= curve[reached] + 1e-12) & (curve[reached] <= high[reached] + 1e-12))
    assert (high - low)[reached].max() > 0, "the runs differ, so the band has width"
    fig = learn.recorder.plot_lr_find()
    fill = [c for c in fig.axes[0].collections if c.get_label() == '10-90% of 3 runs']
    assert len(fill) == 1
    xs = fill[0].get_paths()[0].vertices[:, 0]
    assert np.isclose(xs.min(), lrs[reached].min()) and np.isclose(xs.max(), lrs[reached].max())


def test_repeated_runs_keep_the_validation_probe_on_the_median_curve():
    "lr_find(n_runs=3, valid_every=5): the probe is the per-point median of the runs' probes, and the plot draws it"
    import warnings
    import numpy as np
    from lrfinder_cb.cli import demo_learner
    learn = demo_learner(0)
    with learn.no_bar(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = learn.lr_find(n_runs=3, valid_every=5, show_plot=False)
    record, runs = res.record, [r.record for r in res.runs]
    assert record.valid_losses and len(record.valid_lrs) == len(record.valid_losses)
    assert np.isclose(record.valid_losses[0], np.median([r.valid_losses[0] for r in runs]))
    labels = [l.get_label() for a in learn.recorder.plot_lr_find().axes for l in a.lines]
    assert any(l.startswith('validation loss (probe') for l in labels)
