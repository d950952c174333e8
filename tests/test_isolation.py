"""lr_find leaves no trace and composes with real fastai pipelines (issue 3).

Each check runs on ours; where fastai's own lr_find falls short, the same check is run on it and must fail."""
import math, os, random, stat, types, warnings
import numpy as np
import pytest
import torch
from torch import nn
from fastai.callback.core import Callback, CancelFitException, CancelStepException
from fastai.callback.progress import CSVLogger
from fastai.callback.schedule import ParamScheduler, SchedLin
from fastai.callback.tracker import EarlyStoppingCallback, SaveModelCallback
from fastai.callback.training import GradientAccumulation, GradientClip
from fastai.callback.mixup import MixUp
from fastai.optimizer import OptimWrapper
from functools import partial
from lrfinder_cb.all import LRFinder, LRFinderWarning, Snapshot
from helpers import (demo_learner, regression_learner, weights, assert_same_weights, opt_state, assert_same_opt_state,
                     RaiseAt, quiet)


def ours(learn, **kwargs):
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        return learn.lr_find(show_plot=False, **kwargs)


@pytest.fixture
def theirs(fastai_lr_find):
    def run(learn, **kwargs):
        with quiet(learn), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            return fastai_lr_find(learn, show_plot=False, **kwargs)
    return run


def falls_short(check, *args, **kwargs):
    "`check` must fail (an assertion, or the error fastai raises) when run on fastai's lr_find"
    with pytest.raises((Exception, pytest.fail.Exception)): check(*args, **kwargs)


def two_groups(m): return [list(m[0].parameters()), list(m[1:].parameters())]


class Noise(Callback):
    "Augmentation drawing from Python's and NumPy's global RNGs"
    order = 1
    def before_batch(self):
        if self.training: self.learn.xb = (self.xb[0]*(1 + 0.01*np.random.rand() + 0.01*random.random()),)


class Probe(Callback):
    """Record, for every training batch, the learning rate and momentum in use and the loss (in a namespace object: a short fit
    puts back a callback's own attributes and lists, and keeps other objects by reference)"""
    order = 62
    def __init__(self): self.log = types.SimpleNamespace(lrs=[], moms=[], losses=[], saw_lr_finder=None)
    def __getattr__(self, name):
        if name in ('lrs', 'moms', 'losses', 'saw_lr_finder'): return getattr(self.__dict__['log'], name)
        return super().__getattr__(name)
    def before_fit(self): self.log.saw_lr_finder = hasattr(self.learn, 'lr_finder')
    def after_loss(self):
        if not self.training: return
        self.log.lrs.append(self.opt.hypers[-1]['lr']); self.log.moms.append(self.opt.hypers[-1].get('mom'))
        self.log.losses.append(self.learn.loss.item())


# --- Leave no trace -----------------------------------------------------------------------------------------------

def check_fit_after_lr_find_is_fit_alone(run, tmp_path):
    alone = regression_learner(tmp_path, dropout=0.3, seed=1, cbs=Noise())
    with quiet(alone): alone.fit(2, 1e-2)
    probed = regression_learner(tmp_path, dropout=0.3, seed=1, cbs=Noise())
    run(probed, num_it=30)
    with quiet(probed): probed.fit(2, 1e-2)
    assert_same_weights(weights(alone), weights(probed))


def test_fit_after_lr_find_is_bit_identical_to_fit_alone(tmp_path, theirs):
    check_fit_after_lr_find_is_fit_alone(ours, tmp_path)
    falls_short(check_fit_after_lr_find_is_fit_alone, theirs, tmp_path)


EXITS = {
    'num_it': dict(kwargs=dict(num_it=20, stop_div=False), cbs=[], raises=None),
    'stop_div': dict(kwargs=dict(num_it=100, end_lr=1e4), cbs=[], raises=None),
    'cancel': dict(kwargs=dict(num_it=50), cbs=[lambda: RaiseAt(7, CancelFitException())], raises=None),
    'exception': dict(kwargs=dict(num_it=50), cbs=[lambda: RaiseAt(7, RuntimeError('boom'))], raises=RuntimeError),
    'ctrl_c': dict(kwargs=dict(num_it=50), cbs=[lambda: RaiseAt(7, KeyboardInterrupt())], raises=KeyboardInterrupt),
}


def check_exit_path(run, tmp_path, exit, via='lr_find', count=None):
    spec = EXITS[exit]
    learn = regression_learner(tmp_path)
    with quiet(learn): learn.fit(1, 1e-2)  # optimizer state exists before the range test
    for make in spec['cbs']: learn.add_cb(make())
    before_w, before_opt = weights(learn), opt_state(learn)
    def go():
        if via == 'lr_find': run(learn, **spec['kwargs'])
        else:
            with quiet(learn): learn.fit(10, cbs=LRFinder(**spec['kwargs'], suggest_funcs=None))
    if spec['raises']:
        with pytest.raises(spec['raises']): go()
    else: go()
    assert_same_weights(before_w, weights(learn))
    assert_same_opt_state(before_opt, opt_state(learn))
    if count is not None: assert count == [1]


@pytest.mark.parametrize('via', ['lr_find', 'fit'])
@pytest.mark.parametrize('exit', list(EXITS))
def test_restored_once_on_every_exit_path(tmp_path, monkeypatch, exit, via):
    calls = [0]
    original = Snapshot.restore
    def counting(self): calls[0] += 1; original(self)
    monkeypatch.setattr(Snapshot, 'restore', counting)
    check_exit_path(ours, tmp_path, exit, via, count=calls)


@pytest.mark.parametrize('exit', ['exception', 'ctrl_c'])
def test_fastai_does_not_restore_after_an_exception(tmp_path, theirs, exit):
    falls_short(check_exit_path, theirs, tmp_path, exit)


def check_optimizer_and_learner_as_they_were(run, tmp_path):
    learn = regression_learner(tmp_path, splitter=two_groups)
    with quiet(learn): learn.fit(1, 1e-2)
    learn.opt.set_hyper('lr', [1e-5, 3e-4]); learn.opt.set_hyper('mom', [0.8, 0.9]); learn.opt.set_hyper('wd', [0., 1e-3])
    learn.lr = 5e-3
    counters = {k: getattr(learn, k) for k in ('epoch', 'iter', 'train_iter', 'n_epoch', 'lr')}
    things = dict(loss_func=learn.loss_func, dls=learn.dls, opt=learn.opt, model=learn.model, cbs=list(learn.cbs))
    before_opt = opt_state(learn)
    run(learn, num_it=25)
    assert_same_opt_state(before_opt, opt_state(learn))
    assert {k: getattr(learn, k) for k in counters} == counters
    for k, v in things.items():  # `quiet` (no_bar) swaps in a new ProgressCallback: compare callbacks by type
        assert (sorted(map(repr, getattr(learn, k))) == sorted(map(repr, v))) if k == 'cbs' else getattr(learn, k) is v, k


def test_optimizer_and_learner_as_they_were(tmp_path, theirs):
    check_optimizer_and_learner_as_they_were(ours, tmp_path)
    falls_short(check_optimizer_and_learner_as_they_were, theirs, tmp_path)


def check_fresh_optimizer_left_as_fastai_does(run, tmp_path):
    "fastai leaves an optimizer with empty state on a learner that had none (its own test reads `learn.opt.state_dict()`)"
    learn = regression_learner(tmp_path)
    run(learn, num_it=10)
    fresh = regression_learner(tmp_path)
    fresh.create_opt()
    assert learn.opt.state_dict()['state'] == fresh.opt.state_dict()['state']
    assert [dict(h) for h in learn.opt.hypers] == [dict(h) for h in fresh.opt.hypers]


def test_fresh_optimizer_left_as_fastai_does(tmp_path, theirs):
    check_fresh_optimizer_left_as_fastai_does(ours, tmp_path)
    check_fresh_optimizer_left_as_fastai_does(theirs, tmp_path)


def check_nothing_on_disk(run, tmp_path, monkeypatch):
    work = tmp_path/'work'; work.mkdir(parents=True); monkeypatch.chdir(work)
    missing = regression_learner(tmp_path/'missing')
    run(missing, num_it=10)
    assert not (tmp_path/'missing').exists() and os.listdir(work) == []
    readonly = tmp_path/'readonly'; readonly.mkdir(); readonly.chmod(stat.S_IREAD | stat.S_IEXEC)
    try: run(regression_learner(readonly), num_it=10)
    finally: readonly.chmod(stat.S_IRWXU)
    assert os.listdir(readonly) == []


def test_nothing_on_disk(tmp_path, monkeypatch, theirs):
    check_nothing_on_disk(ours, tmp_path/'ours', monkeypatch)
    falls_short(check_nothing_on_disk, theirs, tmp_path/'theirs', monkeypatch)


def test_range_test_after_training_runs_a_full_curve_and_repeats(tmp_path):
    learn = regression_learner(tmp_path)
    with quiet(learn): learn.fit_one_cycle(3, 1e-2)
    ours(learn, num_it=60, end_lr=1.)
    first = learn.recorder.lr_find_record
    ours(learn, num_it=60, end_lr=1.)
    second = learn.recorder.lr_find_record
    assert first.n_recorded == 60 and first.stop_reason == 'num_it'
    assert (first.lrs, first.losses) == (second.lrs, second.losses)


MEMORY_SCRIPT = """
import gc, resource, sys, tempfile, warnings
warnings.filterwarnings('ignore')
sys.path.insert(0, {tests!r})
import torch
from torch import nn
from lrfinder_cb.all import Snapshot
from helpers import regression_learner, quiet
learn = regression_learner(tempfile.mkdtemp())
learn.model = nn.Sequential(nn.Linear(3, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1))  # 4 MB
with quiet(learn): learn.fit(1, 1e-3)  # Adam state: 8 MB more, so one snapshot is 12 MB
def run():
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore'); learn.lr_find(num_it=5, show_plot=False)
def tensor_bytes():
    gc.collect(); return sum(o.numel()*o.element_size() for o in gc.get_objects() if isinstance(o, torch.Tensor))
for _ in range(5): run()
peak, live = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, tensor_bytes()
for _ in range(15): run()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak)/1024, (tensor_bytes() - live)/2**20,
      sum(isinstance(o, Snapshot) for o in gc.get_objects()))
"""


def test_memory_does_not_grow_over_15_calls():
    """Peak RSS over 15 calls, in a fresh process. glibc raises its mmap threshold after large frees, after which freed tensors
    stay in the heap and peak RSS ratchets up by chance; pinning the threshold makes the peak reflect what is really live."""
    import subprocess, sys
    from pathlib import Path
    env = {**os.environ, 'MALLOC_MMAP_THRESHOLD_': '131072'}
    out = subprocess.run([sys.executable, '-c', MEMORY_SCRIPT.format(tests=str(Path(__file__).parent))],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    peak_mb, live_mb, snapshots = out.stdout.split()
    assert float(peak_mb) < 4, f"peak memory grew by {peak_mb} MB over 15 calls (one leaked snapshot is 12 MB)"
    assert float(live_mb) == 0 and int(snapshots) == 0, "something of the snapshot outlived the call"


# --- Compose with the training loop ----------------------------------------------------------------------------------

def check_gradient_accumulation(run, tmp_path):
    probe = Probe()
    learn = regression_learner(tmp_path, bs=16, cbs=[GradientAccumulation(n_acc=64), probe])
    run(learn, num_it=20, stop_div=False, end_lr=1e-1)
    windows = [probe.lrs[i:i+4] for i in range(0, 80, 4)]
    assert all(len(set(w)) == 1 for w in windows), "the learning rate moved inside an accumulation window"
    rec = learn.recorder.lr_find_record
    assert (rec.n_recorded, rec.n_acc) == (20, 4)
    assert rec.lrs == [w[0] for w in windows]
    np.testing.assert_allclose(rec.losses, [np.mean(probe.losses[i:i+4]) for i in range(0, 80, 4)], rtol=1e-6)


def test_gradient_accumulation_counts_optimizer_steps(tmp_path, theirs):
    check_gradient_accumulation(ours, tmp_path)
    falls_short(check_gradient_accumulation, theirs, tmp_path)


class SkipSteps(Callback):
    "Cancel every third optimizer step, as `MixedPrecision` does after a gradient overflow"
    order = 10
    def __init__(self): self.count = types.SimpleNamespace(batches=0, skipped=0) # kept by reference through a short fit
    def before_step(self):
        self.count.batches += 1
        if self.count.batches % 3 == 0:
            self.count.skipped += 1
            raise CancelStepException()


def check_skipped_steps(run, tmp_path):
    skipper, probe = SkipSteps(), Probe()
    learn = regression_learner(tmp_path, cbs=[skipper, probe])
    run(learn, num_it=30, stop_div=False, end_lr=1e-1)
    n_points = len(learn.recorder.lrs)
    assert n_points == skipper.count.batches - skipper.count.skipped, "a point was recorded for a step that did not happen"
    assert n_points == 30
    np.testing.assert_allclose(learn.recorder.lrs, [1e-7*(1e-1/1e-7)**(i/30) for i in range(30)], rtol=1e-12)


def test_skipped_steps_neither_advance_nor_record(tmp_path, theirs):
    check_skipped_steps(ours, tmp_path)
    falls_short(check_skipped_steps, theirs, tmp_path)


def check_discriminative_lrs(run, tmp_path):
    learn = regression_learner(tmp_path, splitter=two_groups)
    res = run(learn, start_lr=[1e-7, 1e-6], end_lr=1., num_it=30)
    rec = learn.recorder.lr_find_record
    assert all(g[1]/g[0] == pytest.approx(10) for g in rec.group_lrs)
    assert rec.lrs == [g[1] for g in rec.group_lrs]
    assert rec.lrs[-1] < 1.
    if res.lr is not None: assert res.per_group() == pytest.approx([res[0]/10, res[0]])
    lr = float(rec.lrs[len(rec.lrs)//2]) # the groups' ratio at any rate of the sweep
    assert res.record.group_lrs_at(lr) == pytest.approx([lr/10, lr])
    assert 'last of 2 parameter groups' in learn.recorder.plot_lr_find().axes[0].get_xlabel()


def test_discriminative_lrs(tmp_path, theirs):
    check_discriminative_lrs(ours, tmp_path)
    falls_short(check_discriminative_lrs, theirs, tmp_path)
    learn = regression_learner(tmp_path, splitter=two_groups)  # fastai's numpy arrays work too
    ours(learn, start_lr=np.array([1e-7, 1e-6]), end_lr=np.array([1e-1, 1.]), num_it=10)
    assert learn.recorder.lr_find_record.group_lrs[0] == pytest.approx((1e-7, 1e-6))


def check_logging_and_trackers_stay_quiet(run, tmp_path):
    tmp_path.mkdir(parents=True)
    (tmp_path/'history.csv').write_text('epoch,train_loss\n0,1.0\n')
    probe = Probe()
    learn = regression_learner(tmp_path, cbs=[CSVLogger(), probe, SaveModelCallback(every_epoch=True),
                                              EarlyStoppingCallback(patience=0)])
    run(learn, num_it=40, stop_div=False, end_lr=1e-1)  # 16 batches an epoch: three epochs
    assert probe.saw_lr_finder
    assert (tmp_path/'history.csv').read_text() == 'epoch,train_loss\n0,1.0\n', "CSVLogger rewrote history.csv"
    assert sorted(os.listdir(tmp_path)) == ['history.csv'], "a tracker saved a model"
    assert len(learn.recorder.lrs) == 40, "a tracker stopped the run"
    assert all(cb.run for cb in learn.cbs)


def test_logging_and_tracking_callbacks_stay_quiet(tmp_path, theirs):
    check_logging_and_trackers_stay_quiet(ours, tmp_path/'ours')
    falls_short(check_logging_and_trackers_stay_quiet, theirs, tmp_path/'theirs')


def check_param_scheduler_left_alone(run, tmp_path):
    probe = Probe()
    sched = ParamScheduler({'mom': SchedLin(0.95, 0.5)})
    learn = regression_learner(tmp_path, cbs=[sched, probe])
    with quiet(learn): learn.fit(1, 1e-2)
    hps = learn.recorder.hps
    probe.moms.clear()
    run(learn, num_it=20)
    assert len(set(probe.moms)) == 1, "a ParamScheduler moved the momentum during the range test"
    assert learn.recorder.hps is hps and sched.run


def test_param_scheduler_does_not_run_during_range_test(tmp_path, theirs):
    check_param_scheduler_left_alone(ours, tmp_path)
    falls_short(check_param_scheduler_left_alone, theirs, tmp_path)


@pytest.mark.parametrize('make_cb', [lambda: MixUp(0.4), lambda: GradientClip(0.1)], ids=['MixUp', 'GradientClip'])
def test_callbacks_leave_nothing_behind(tmp_path, make_cb):
    from fastai.losses import CrossEntropyLossFlat  # MixUp needs a loss that knows its targets are class indices
    def make():
        learn = demo_learner(0, path=tmp_path)
        learn.loss_func = CrossEntropyLossFlat()
        return learn.add_cb(make_cb())
    alone = make()
    with quiet(alone): alone.fit(1, 1e-2)
    probed = make()
    loss_func = probed.loss_func
    ours(probed, num_it=30)
    assert probed.loss_func is loss_func
    with quiet(probed): probed.fit(1, 1e-2)
    assert_same_weights(weights(alone), weights(probed))


def test_optim_wrapper(tmp_path):
    learn = regression_learner(tmp_path, opt_func=partial(OptimWrapper, opt=torch.optim.SGD, momentum=0.9))
    with quiet(learn): learn.fit(1, 1e-2)
    before_w = weights(learn)
    bufs = [learn.opt.opt.state[p]['momentum_buffer'].clone() for p in learn.model.parameters()]
    ours(learn, num_it=20)
    assert_same_weights(before_w, weights(learn))
    for p, b in zip(learn.model.parameters(), bufs): assert torch.equal(learn.opt.opt.state[p]['momentum_buffer'], b)
    assert learn.opt.hypers[0]['lr'] == 1e-2


# --- Real learners --------------------------------------------------------------------------------------------------

def vision(path):
    from fastai.vision.all import vision_learner, resnet18, TensorImage, CrossEntropyLossFlat
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    from fastai.torch_core import set_seed
    set_seed(0)
    x = torch.randn(64, 3, 32, 32); y = (x[:, 0].mean((1, 2)) > 0).long()
    ds = [(TensorImage(a), b) for a, b in zip(x, y)]
    dls = DataLoaders(DataLoader(ds, bs=8, shuffle=True), DataLoader(ds[:16], bs=8))
    return vision_learner(dls, resnet18, pretrained=False, n_out=2, normalize=False, loss_func=CrossEntropyLossFlat(), path=path)


def tabular(path):
    from sklearn.datasets import load_breast_cancer
    from fastai.tabular.all import TabularDataLoaders, tabular_learner, Normalize, CategoryBlock
    from fastai.torch_core import set_seed
    set_seed(0)
    data = load_breast_cancer(as_frame=True)
    df = data.frame.rename(columns=lambda c: c.replace(' ', '_'))
    cont = [c for c in df.columns if c != 'target']
    dls = TabularDataLoaders.from_df(df, path=path, procs=[Normalize], cont_names=cont, y_names='target',
                                     y_block=CategoryBlock(), bs=64, valid_idx=list(range(450, 569)))
    return tabular_learner(dls, layers=[32, 16], path=path)


class TinyRNN(nn.Module):
    "A GRU whose hidden state is carried across batches, with a `reset` as fastai expects"
    def __init__(self):
        super().__init__()
        self.rnn, self.head, self.hidden = nn.GRU(4, 8, batch_first=True), nn.Linear(8, 1), None
    def reset(self): self.hidden = None
    def forward(self, x):
        out, h = self.rnn(x, self.hidden)
        self.hidden = h.detach()
        return self.head(out[:, -1])


def recurrent(path):
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    from fastai.learner import Learner
    from fastai.torch_core import set_seed
    set_seed(0)
    x = torch.randn(128, 6, 4); y = x.sum((1, 2))[:, None]
    ds = list(zip(x, y))
    dls = DataLoaders(DataLoader(ds, bs=16, shuffle=True, drop_last=True), DataLoader(ds[:32], bs=16))
    return Learner(dls, TinyRNN(), loss_func=nn.MSELoss(), path=path)


@pytest.mark.parametrize('make', [vision, tabular, recurrent], ids=['vision_resnet18', 'tabular', 'recurrent'])
def test_real_learners(tmp_path, make):
    alone = make(tmp_path)
    with quiet(alone): alone.fit(1, 1e-3)
    probed = make(tmp_path)
    before = weights(probed)  # includes BatchNorm running statistics
    res = ours(probed, num_it=15)
    assert_same_weights(before, weights(probed))
    assert len(probed.recorder.lrs) > 0 and (math.isfinite(res[0]) or res.verdict == 'none') # 15 points rarely show a valley
    with quiet(probed): probed.fit(1, 1e-3)
    assert_same_weights(weights(alone), weights(probed))
    assert os.listdir(tmp_path) == []


# --- Bad input ------------------------------------------------------------------------------------------------------

BAD = [
    (dict(start_lr=0.), 'start_lr'), (dict(start_lr=-1e-3), 'start_lr'), (dict(start_lr=float('nan')), 'start_lr'),
    (dict(end_lr=1e-8), 'end_lr'), (dict(end_lr=float('inf')), 'end_lr'),
    (dict(num_it=0), 'num_it'), (dict(num_it=2.5), 'num_it'), (dict(num_it='100'), 'num_it'),
    (dict(start_lr=[1e-7, 1e-6, 1e-5], end_lr=1.), 'parameter groups'),
    ('empty', 'no batches'),
]


def check_bad_input(run, tmp_path, kwargs, message):
    learn = regression_learner(tmp_path, splitter=two_groups)
    if kwargs == 'empty': learn.dls.train.n, kwargs = 0, {}
    before = weights(learn)
    with pytest.raises(ValueError, match=message): run(learn, **kwargs)
    assert_same_weights(before, weights(learn))
    assert learn.opt is None


@pytest.mark.parametrize('kwargs, message', BAD, ids=[m if k == 'empty' else '-'.join(map(str, k.items())) for k, m in BAD])
def test_bad_input_is_a_clear_value_error(tmp_path, theirs, kwargs, message):
    check_bad_input(ours, tmp_path, kwargs, message)
    falls_short(check_bad_input, theirs, tmp_path, kwargs, message)


@pytest.mark.parametrize('n_runs', [1, 2])
def test_an_exception_leaves_the_same_learner_whatever_n_runs(tmp_path, n_runs):
    "A learner without an optimizer gets one at the end of every range test, an interrupted one included, whether it ran once or repeated"
    learn = regression_learner(tmp_path)
    assert learn.opt is None
    before = weights(learn)
    learn.add_cb(RaiseAt(30 if n_runs == 2 else 7, RuntimeError('boom')))  # in the second run when repeated (20 steps each)
    with quiet(learn), pytest.raises(RuntimeError): learn.lr_find(num_it=20, stop_div=False, n_runs=n_runs, show_plot=False)
    assert_same_weights(before, weights(learn))
    assert learn.opt is not None
