"""One verdict for one curve (issue 15): the fall-versus-noise test measures the median curve of `n_runs` against one run's noise, so a
flat curve is flat whether it comes from one run or several; and the note tells a trained model's flat curve from one too noisy to read."""
import tempfile, warnings
import numpy as np
import pytest
import torch
from torch import nn
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.torch_core import set_seed
from lrfinder_cb.all import LRFinderWarning
from lrfinder_cb.core import LRFinderRecord
from lrfinder_cb.suggest import suggest, relative_fall, run_noise, prepare_curve
from helpers import regression_learner, quiet


def find(learn, **kwargs):
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        return learn.lr_find(show_plot=False, **kwargs)


def trained(seed, path):
    "A small regression MLP trained to its noise floor: its range test has nothing left to find"
    learn = regression_learner(path, seed=seed)
    with quiet(learn): learn.fit_one_cycle(10, 1e-2)
    return learn


def test_one_run_and_three_agree_that_a_trained_model_shows_no_valley():
    with tempfile.TemporaryDirectory() as path:
        both = []
        for seed in range(10):
            learn = trained(seed, path)
            one, three = find(learn), find(learn, n_runs=3)
            both.append(one.no_clear_valley and three.no_clear_valley)
        assert sum(both) >= 9, both # judged against the median curve's own noise instead, seed 6 passed at 6.0 with n_runs=3
        assert 'trained before this range test' in one.notes[-1] and "one run's smoothed curve" in three.notes[-1]


def test_pure_noise_passes_no_more_often_as_the_median_of_runs():
    "Flat curves of pure noise: one run is called a valley about 4% of the time; the median of 3 or 5 runs, against one run's noise, almost never"
    rng, lrs = np.random.default_rng(0), 1e-7*(1e8)**(np.arange(100)/100)
    def record(k):
        runs = []
        for _ in range(k):
            r = LRFinderRecord(num_it=100, stop_div=False)
            for lr, loss in zip(lrs, 1 + 0.1*rng.standard_normal(100)): r.add([lr], loss)
            runs.append(r)
        return runs[0] if k == 1 else LRFinderRecord.median_of(runs)
    rate = {k: np.mean([not suggest(record(k), warn=False).no_clear_valley for _ in range(300)]) for k in (1, 3, 5)}
    assert rate[1] < 0.08 and rate[3] <= 0.01 and rate[5] <= 0.01, rate # against its own noise, a median passes as often as one run


def test_the_median_of_runs_is_judged_against_one_runs_noise():
    rng, lrs = np.random.default_rng(1), 1e-7*(1e8)**(np.arange(100)/100)
    runs = []
    for _ in range(3):
        r = LRFinderRecord(num_it=100, stop_div=False)
        for lr, loss in zip(lrs, 1 + 0.1*rng.standard_normal(100)): r.add([lr], loss)
        runs.append(r)
    median = LRFinderRecord.median_of(runs)
    l, raw, _ = prepare_curve(median.lrs, median.losses, 100)
    assert run_noise(median) == pytest.approx(np.median([np.median(np.abs(np.diff(prepare_curve(r.lrs, r.losses, 100)[1])))/(0.6745*np.sqrt(2)) for r in runs]))
    assert relative_fall(l, raw, run_noise(median)) < relative_fall(l, raw), "one run's noise is the larger yardstick"
    assert run_noise(runs[0]) is None


def noisy_regression(path, seed, bs=4):
    "Untrained, small batches, a weak signal under heavy target noise: the curve's fall is lost in the noise of single batches"
    set_seed(seed)
    x = torch.randn(512, 3)
    y = 0.3*x[:, :1] + 2*torch.randn(512, 1)
    ds = list(zip(x, y))
    dls = DataLoaders(DataLoader(ds, bs=bs, shuffle=True), DataLoader(ds[:64], bs=bs))
    return Learner(dls, nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1)), loss_func=nn.MSELoss(), path=path)


def test_a_noisy_untrained_curve_gets_the_remedies_for_noise_not_the_trained_note(tmp_path):
    res = find(noisy_regression(tmp_path, 0))
    assert res.no_clear_valley
    note = res.notes[-1]
    assert 'had not been trained' in note and 'steps_per_lr' in note and 'larger batch' in note and 'n_runs' in note
    assert 'trained before' not in note
