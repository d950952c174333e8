"""Every short fit (the range test, trials, find-then-train) in the pipelines users run (issue 26): training state outside the model and
the optimizer comes back (a torch scheduler in a callback, EMA and SWA averages, Lookahead), batches a callback cancels make no point,
trials run under mixed precision, and an exported learner loads where lrfinder_cb is not installed.

Each case checks that the next `fit` after the short fit is bit-identical to the same `fit` alone."""
import inspect, math, subprocess, sys, types, warnings
from functools import partial
import pytest
import torch
from fastai.callback.core import Callback, CancelBatchException
from fastai.callback.fp16 import MixedPrecision
from fastai.optimizer import OptimWrapper, ranger
from lrfinder_cb.all import FindLR, LRFinderWarning
from helpers import regression_learner, demo_learner, weights, assert_same_weights, quiet
from test_isolation import tabular


def torch_sgd(params, lr, **kwargs): return OptimWrapper(params, torch.optim.SGD, lr=lr, momentum=0.9)


class TorchScheduler(Callback):
    "Steps a torch LR scheduler on the learner's torch optimizer after every step; `lazy`: built at the start of the first fit"
    def __init__(self, make, lazy=False): self.make, self.lazy, self.sched = make, lazy, None
    def attach(self, learn):
        if not self.lazy: self.sched = self.make(learn.opt.opt)
    def before_fit(self):
        if self.sched is None: self.sched = self.make(self.learn.opt.opt)
        for g, lr in zip(self.learn.opt.opt.param_groups, self.sched.get_last_lr()): g['lr'] = lr # the scheduler drives the rate
    def after_step(self): self.sched.step()


class EMA(Callback):
    "An exponential moving average of the weights, in a dict of tensors updated in place"
    order = 70
    def __init__(self, decay=0.9): self.decay, self.avg = decay, None
    def after_step(self):
        current = {k: v.detach() for k, v in self.learn.model.state_dict().items()}
        if self.avg is None: self.avg = {k: v.clone() for k, v in current.items()}
        else:
            for k, v in current.items(): self.avg[k].mul_(self.decay).add_(v, alpha=1 - self.decay)


class SWA(Callback):
    "torch's `AveragedModel` of the weights, updated every epoch"
    order = 70
    def __init__(self): self.averaged = None
    def before_fit(self):
        if self.averaged is None: self.averaged = torch.optim.swa_utils.AveragedModel(self.learn.model)
    def after_epoch(self): self.averaged.update_parameters(self.learn.model)


def sched_one_cycle(opt): return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=64)
def sched_multistep(opt): return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[20, 40], gamma=0.3)
def sched_warmup(opt): return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1., (step + 1)/30))

PIPELINES = dict(
    one_cycle_scheduler=lambda: dict(cbs=[TorchScheduler(sched_one_cycle)], opt_func=torch_sgd),
    multistep_scheduler=lambda: dict(cbs=[TorchScheduler(sched_multistep)], opt_func=torch_sgd),
    warmup_built_at_fit=lambda: dict(cbs=[TorchScheduler(sched_warmup, lazy=True)], opt_func=torch_sgd),
    ema=lambda: dict(cbs=[EMA()]),
    swa=lambda: dict(cbs=[SWA()]),
    ranger=lambda: dict(opt_func=ranger),
    filter=lambda: dict(cbs=[Filter()]),
    skip_non_finite=lambda: dict(cbs=[SkipNonFinite()]),
)


def pipeline(tmp_path, name):
    learn = regression_learner(tmp_path, bs=16, dropout=0.2, **PIPELINES[name]())
    learn.create_opt()
    for cb in learn.cbs:
        if isinstance(cb, TorchScheduler): cb.attach(learn)
    return learn


def state(learn):
    "Weights, and the state the pipeline's callbacks and optimizer keep"
    res = {f"w.{k}": v for k, v in weights(learn).items()}
    for cb in learn.cbs:
        if isinstance(cb, EMA) and cb.avg is not None: res.update({f"ema.{k}": v.clone() for k, v in cb.avg.items()})
        if isinstance(cb, SWA) and cb.averaged is not None:
            res.update({f"swa.{k}": v.clone() for k, v in cb.averaged.state_dict().items()})
        if isinstance(cb, TorchScheduler) and cb.sched is not None:
            res.update({f"sched.{k}": torch.tensor(float(v)) for k, v in cb.sched.state_dict().items() if isinstance(v, (int, float))})
    slow = getattr(learn.opt, 'slow_weights', None)
    if slow is not None: res.update({f"slow.{i}.{j}": p.clone() for i, g in enumerate(slow) for j, p in enumerate(g)})
    if hasattr(learn.opt, 'count'): res['count'] = torch.tensor(learn.opt.count)
    return res


def short_fits(learn):
    "Every kind of short fit, each of which must leave the pipeline as it was"
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        res = learn.lr_find(num_it=40, show_plot=False)
        learn.lr_find(num_it=30, n_runs=2, show_plot=False)
        learn.trial_lrs(res if not res.no_clear_valley else None, candidates=[1e-3, 1e-2], n_steps=8)


@pytest.mark.parametrize('name', PIPELINES)
def test_the_next_fit_is_the_fit_alone(tmp_path, name):
    "`lr_find()`, repeated runs and trials leave every piece of the pipeline's state as it was: the next fit is bit-identical to fit alone"
    alone = pipeline(tmp_path, name)
    with quiet(alone): alone.fit(1, 1e-2); alone.fit(1, 1e-2) # first: global generators (dropout) run on from one learner to the next
    probed = pipeline(tmp_path, name)
    with quiet(probed):
        probed.fit(1, 1e-2) # trained first: averages, counters and slow weights have state to lose
        before = state(probed)
        short_fits(probed)
        after = state(probed)
    assert before.keys() == after.keys()
    for k in before: assert torch.equal(before[k], after[k]), f"{k} changed"
    with quiet(probed): probed.fit(1, 1e-2)
    assert_same_weights(weights(alone), weights(probed))
    for k, v in state(alone).items(): assert torch.equal(v, state(probed)[k]), f"{k} differs after the next fit"


@pytest.mark.parametrize('name', ['ema', 'swa', 'ranger', 'one_cycle_scheduler'])
def test_find_then_train_trains_as_the_explicit_calls(tmp_path, name):
    "`fit_one_cycle(n, lr_max='find')` and `FindLR` on these pipelines: the same weights as `lr_find()` then the call at its suggestion"
    def run(learn, *args, **kwargs):
        with quiet(learn), warnings.catch_warnings():
            warnings.simplefilter('ignore', LRFinderWarning)
            learn.fit_one_cycle(*args, **kwargs)
    explicit = pipeline(tmp_path, name)
    with quiet(explicit), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        found = explicit.lr_find(show_plot=False)
    run(explicit, 1, lr_max=found.between)
    one_call = pipeline(tmp_path, name)
    run(one_call, 1, lr_max='find')
    assert one_call.recorder.suggested_lrs.between == found.between
    assert_same_weights(weights(explicit), weights(one_call))
    if name == 'one_cycle_scheduler': return # its scheduler sets the rate: FindLR's scaling has nothing to act on
    with_cb = pipeline(tmp_path, name)
    run(with_cb, 1, 1e-4, cbs=FindLR())
    for k, v in weights(explicit).items(): torch.testing.assert_close(v, weights(with_cb)[k], rtol=1e-5, atol=1e-6)


class Filter(Callback):
    "Drops every third training batch before anything sees it (a data filter)"
    order = -5
    def __init__(self): self.n = 0
    def before_batch(self):
        if not self.training: return
        self.n += 1
        if self.n % 3 == 0: raise CancelBatchException()


class SkipNonFinite(Callback):
    "Makes the loss of some batches NaN and skips them in `after_loss`, as a guard against bad batches would"
    order = -5
    def __init__(self, every=7): self.every, self.n = every, 0
    def after_loss(self):
        if not self.training: return
        self.n += 1
        if self.n % self.every == 0: self.learn.loss = self.learn.loss*math.nan
        if not torch.isfinite(self.learn.loss): raise CancelBatchException()


class CountSteps(Callback):
    "Counts the optimizer steps that happened (in a namespace object, which a short fit keeps by reference)"
    def __init__(self): self.count = types.SimpleNamespace(steps=0)
    def after_step(self): self.count.steps += 1


@pytest.mark.parametrize('make', [Filter, SkipNonFinite])
def test_cancelled_batches_make_no_point(tmp_path, make):
    "A batch a callback cancels makes no point and leaves nothing for the next: one point per real step, on the schedule, all finite"
    steps = CountSteps()
    learn = regression_learner(tmp_path, bs=16, cbs=[make(), steps])
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        learn.lr_find(num_it=70, stop_div=False, end_lr=1e-1, show_plot=False)
    rec = learn.recorder.lr_find_record
    assert rec.n_recorded == rec.n_optimizer_steps == steps.count.steps == 70 and rec.stop_reason == 'num_it'
    expected = [1e-7*(1e-1/1e-7)**(i/70) for i in range(70)]
    assert rec.lrs == pytest.approx(expected, rel=1e-9)
    assert all(math.isfinite(l) for l in rec.losses)


def test_trials_under_mixed_precision(tmp_path):
    "Trials are scored inside their fit, while `MixedPrecision`'s autocast is live (scored after it, they crashed)"
    bf16 = 'amp_mode' in inspect.signature(MixedPrecision.__init__).parameters # fastai 2.7.12 has fp16 only
    mp = MixedPrecision(amp_mode='bf16') if bf16 else MixedPrecision()
    learn = demo_learner(0, path=tmp_path)
    learn.add_cb(mp)
    before = weights(learn)
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = learn.lr_find(show_plot=False)
        trial = learn.trial_lrs(res, n_steps=10)
    assert all(math.isfinite(l) for l in trial.losses) and trial.lr in trial.lrs
    assert_same_weights(before, weights(learn))


EXPORTED = """
import sys, torch
sys.modules['lrfinder_cb'] = None # as on an inference server: importing it fails
from fastai.learner import load_learner
learn = load_learner(sys.argv[1])
xb = torch.load(sys.argv[2])
with torch.no_grad(): torch.save(learn.model.eval()(*xb), sys.argv[3])
"""


@pytest.mark.parametrize('how', ['lr_find', 'find_then_train', 'trials', 'batch_sizes'])
def test_an_exported_learner_loads_without_lrfinder_cb(tmp_path, how):
    "After any short fit, `learn.export()` loads in a process where lrfinder_cb cannot be imported, and predicts the same"
    learn = tabular(tmp_path) # a learner fastai can export (the demo's plain-list datasets cannot be emptied)
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        if how == 'find_then_train': learn.fit_one_cycle(1, lr_max='find')
        elif how == 'batch_sizes': learn.lr_find_bs((32, 64), show_plot=False)
        else:
            res = learn.lr_find(show_plot=False)
            if how == 'trials': learn.trial_lrs(res, n_steps=5)
    kept = getattr(learn.recorder, 'lr_find_by_bs' if how == 'batch_sizes' else 'suggested_lrs', None)
    assert kept is not None, "the result stays available in this process"
    learn.export(tmp_path/'export.pkl')
    xb = learn.dls.valid.one_batch()[:2]
    torch.save(xb, tmp_path/'x.pt')
    done = subprocess.run([sys.executable, '-c', EXPORTED, str(tmp_path/'export.pkl'), str(tmp_path/'x.pt'), str(tmp_path/'y.pt')],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    with torch.no_grad(): expected = learn.model.eval()(*xb)
    assert torch.equal(torch.load(tmp_path/'y.pt'), expected)


@pytest.mark.parametrize('logger', ['wandb', 'tensorboard'])
def test_findlr_with_fastais_loggers(tmp_path, logger, monkeypatch):
    "`FindLR` with W&B (disabled mode, on the learner) and TensorBoard (in the fit): the range test runs unlogged, the fit trains at its suggestion"
    pytest.importorskip(logger)
    learn = demo_learner(0, path=tmp_path)
    if logger == 'wandb':
        import wandb
        from fastai.callback.wandb import WandbCallback
        monkeypatch.setenv('WANDB_MODE', 'disabled')
        monkeypatch.setenv('WANDB_SILENT', 'true')
        wandb.init(mode='disabled')
        plain = demo_learner(0, path=tmp_path).add_cb(WandbCallback(log_preds=False, log_model=False))
        try:
            with quiet(plain): plain.fit(1, 1e-3) # fastai's callback alone, without any range test
        except Exception as e: pytest.skip(f"fastai's WandbCallback fails on this stack without lrfinder_cb: {type(e).__name__}: {e}")
        learn.add_cb(WandbCallback(log_preds=False, log_model=False))
        cbs = [FindLR(lr_find_kwargs=dict(num_it=80))]
    else:
        from fastai.callback.tensorboard import TensorBoardCallback
        cbs = [TensorBoardCallback(log_dir=tmp_path/'tb', trace_model=False, log_preds=False), FindLR(lr_find_kwargs=dict(num_it=80))]
    explicit = demo_learner(0, path=tmp_path)
    with quiet(explicit), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        found = explicit.lr_find(num_it=80, show_plot=False)
        explicit.fit_one_cycle(1, found.between)
        learn.fit_one_cycle(1, 1e-4, cbs=cbs)
    assert cbs[-1].results[0].between == found.between
    for k, v in weights(explicit).items(): torch.testing.assert_close(v, weights(learn)[k], rtol=1e-5, atol=1e-6)
    if logger == 'tensorboard': assert len(list((tmp_path/'tb').iterdir())) == 1, "one event file: the training's"
