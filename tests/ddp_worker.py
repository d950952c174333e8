"""One rank of a 2-process CPU range test over gloo, launched by test_distributed.py as torchrun would.

    python ddp_worker.py SCENARIO FINDER OUT_JSON      (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the environment)

SCENARIO: 'ddp' (model wrapped in DistributedDataParallel, each rank its own shard), 'blowup' (the same, rank 1's inputs
scaled so that its loss explodes much earlier), 'distrib_ctx' (fastai's `learn.distrib_ctx()`), 'findlr' (the 'ddp' learner trained
by `fit_one_cycle` with the `FindLR` callback), 'trial' and 'trial_blowup' (`trial_lrs` on the 'ddp' and 'blowup' learners), 'trial_ctx' (`lr_find` then `trial_lrs` inside
`learn.distrib_ctx()`).
FINDER: 'ours' or 'fastai'."""
import json, os, sys, warnings
warnings.filterwarnings('ignore')
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

scenario, finder, out = sys.argv[1:4]
rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
torch.set_num_threads(1)
dist.init_process_group('gloo', rank=rank, world_size=world)

from fastai.learner import Learner
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.torch_core import set_seed
import lrfinder_cb  # noqa: F401
from lrfinder_cb.learner import fastai_finder
FASTAI_LR_FIND = fastai_finder.lr_find


def shard(seed, scale=1.):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(128, 3, generator=g)*scale
    y = x @ torch.tensor([1., -2., .5]) + .1*torch.randn(128, generator=g)
    return list(zip(x, y[:, None]))


set_seed(0)  # the same initial weights on every rank
model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
if scenario in ('distrib_ctx', 'trial_ctx'):
    from fastai.distributed import DistributedDL
    def _broadcast_on_cpu(self, t, rank):  # fastai's uses .cuda(), which fails on CPU: the test harness works around it
        t = torch.LongTensor(t); dist.broadcast(t, rank); return t.tolist()
    DistributedDL._broadcast = _broadcast_on_cpu
    data = shard(100)  # one dataset: DistributedDL gives each rank its part
    dls = DataLoaders(DataLoader(data, bs=32, shuffle=True), DataLoader(data[:32], bs=32))
    learn = Learner(dls, model, loss_func=nn.MSELoss())
else:
    data = shard(100 + rank, scale=30. if scenario in ('blowup', 'trial_blowup') and rank == 1 else 1.)
    dls = DataLoaders(DataLoader(data, bs=16, shuffle=True), DataLoader(data[:32], bs=16))
    learn = Learner(dls, DistributedDataParallel(model), loss_func=nn.MSELoss())


def find_then_train(learn, result):
    "fit_one_cycle from a peak of 1e-5 with FindLR: what it found, the peak the optimizer saw, the weights after"
    from fastai.callback.core import Callback
    from lrfinder_cb.all import FindLR
    class PeakLR(Callback):
        order = 99
        def before_fit(self): self.peak = 0.
        def after_batch(self):
            if self.training: self.peak = max(self.peak, self.opt.hypers[-1]['lr'])
    finder, peak = FindLR(lr_find_kwargs=dict(num_it=60, end_lr=10.)), PeakLR()
    with learn.no_logging(), learn.no_bar(): learn.fit_one_cycle(2, 1e-5, cbs=[finder, peak])
    result.update(found=[float(v) for v in finder.results[0]], peak=peak.peak,
                  weights=[p.detach().double().sum().item() for p in learn.model.parameters()])


before = {k: v.clone() for k, v in learn.model.state_dict().items()}
result = dict(rank=rank)
try:
    if scenario == 'findlr':
        find_then_train(learn, result)
        dist.barrier()
    else:
        kwargs = dict(num_it=60, end_lr=10., show_plot=False)
        if scenario == 'experiments': kwargs.update(steps_per_lr=2, valid_every=3, valid_batches=2)
        if scenario == 'blowup': kwargs.update(end_lr=100.) # the blow-up well inside the sweep: the stop rule needs a few points after it
        trials = None # 'trial_blowup': its last candidate, 1e30, diverges
        if scenario.startswith('trial'): trials = dict(n_steps=30, valid_batches=2, candidates=[1e-4, 1e-2, 1e30 if scenario == 'trial_blowup' else 1.])
        def find():
            res = learn.lr_find(**kwargs)
            if trials: learn.trial_lrs(res, **trials)
            return res
        with learn.no_logging(), learn.no_bar():
            if scenario in ('distrib_ctx', 'trial_ctx'):
                with learn.distrib_ctx(sync_bn=False): res = find()
            elif finder == 'fastai': res = FASTAI_LR_FIND(learn, **kwargs)
            else: res = find()
        result['suggestions'] = [float(v) for v in res]
        result['losses'] = [float(l) for l in learn.recorder.losses]
        result['lrs'] = [float(l) for l in learn.recorder.lrs]
        rec = getattr(learn.recorder, 'lr_find_record', None)
        if scenario.startswith('trial'): result.update(trial_lrs=res.trial.lrs, trial_losses=res.trial.losses, trial_lr=res.trial.lr)
        if finder == 'ours' and rec is not None:
            result.update(stop_reason=rec.stop_reason, world_size=rec.world_size, effective_batch_size=rec.effective_batch_size,
                          valid_losses=rec.valid_losses, spreads=rec.step_sds)
        after = learn.model.state_dict()
        result['restored'] = all(torch.equal(before[k], after[k]) for k in before)
        dist.barrier()  # a rank that finished waits here for the others, as a training script would at its next collective
except Exception as e:
    result['error'] = f"{type(e).__name__}: {e}"
with open(out, 'w') as f: json.dump(result, f)
dist.destroy_process_group()
