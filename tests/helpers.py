"Small learners and callbacks shared by the tests (CPU, seconds each)."
import contextlib, types
import torch
from torch import nn
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.torch_core import set_seed
from lrfinder_cb.cli import demo_learner  # noqa: F401


def regression_learner(path, n=256, bs=16, seed=0, dropout=0., **kwargs):
    "An MLP on a noisy linear target; `dropout` makes training draw from torch's RNG"
    set_seed(seed)
    x = torch.randn(n, 3)
    y = x @ torch.tensor([1., -2., .5]) + .1*torch.randn(n)
    ds = list(zip(x, y[:, None]))
    dls = DataLoaders(DataLoader(ds, bs=bs, shuffle=True), DataLoader(ds[:64], bs=bs))
    model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1))
    return Learner(dls, model, loss_func=nn.MSELoss(), path=path, **kwargs)


def weights(learn):
    return {k: v.detach().clone() for k, v in learn.model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), f"{k} differs"


def opt_state(learn):
    "Optimizer state and hyper-parameters as plain values, to compare before/after"
    if learn.opt is None: return None
    state = [{k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in learn.opt.state[p].items()}
             for p in learn.model.parameters()]
    return state, [dict(h) for h in learn.opt.hypers]


def assert_same_opt_state(a, b):
    assert (a is None) == (b is None)
    if a is None: return
    (sa, ha), (sb, hb) = a, b
    assert ha == hb
    for x, y in zip(sa, sb):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], torch.Tensor): assert torch.equal(x[k], y[k]), k
            else: assert x[k] == y[k], k


class NaNAt(Callback):
    "Make the training loss NaN from training batch `k` on"
    order = 0
    def __init__(self, k): self.k, self.seen = k, 0
    def after_loss(self):
        if not self.training: return
        if self.seen >= self.k: self.learn.loss = self.learn.loss*float('nan')
        self.seen += 1


class RaiseAt(Callback):
    """Raise `exc` at training batch `k` (after the optimizer step, so the weights have moved), counting across fits: the count lives
    in a namespace object, which a short fit's snapshot keeps by reference (it puts back a callback's own attributes, lists and tensors)"""
    order = 0
    def __init__(self, k, exc): self.k, self.exc, self.count = k, exc, types.SimpleNamespace(seen=0)
    def after_step(self):
        self.count.seen += 1
        if self.count.seen >= self.k: raise self.exc


def quiet(learn):
    "No logging and no progress bar"
    stack = contextlib.ExitStack()
    stack.enter_context(learn.no_logging()); stack.enter_context(learn.no_bar())
    return stack
