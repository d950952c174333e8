"""Time and memory of the suggestion step (issue 10): our default `suggest`, all six rules, and fastai's `valley` on the same curves.

    python benchmarks/suggest_speed.py [--sizes 1000 10000 100000] [--repeats 5] [--lr-find-steps 100000]

Curves are `synthetic_curve(n, noise=0.05)` records that run the full `n` steps. Times are the median of `--repeats` calls, after one warm-up call, each smoothing from scratch (`suggest` smooths each curve once);
peak memory is the largest block `tracemalloc` sees during one call. fastai's `valley` is pure-Python O(n^2) and is timed only up to 10,000 steps.
`--lr-find-steps` also runs one full `lr_find(num_it=...)` on a tiny model and reports its time and the growth of the process's peak RSS.
"""
import argparse, resource, statistics, time, tracemalloc, warnings
warnings.filterwarnings('ignore')
import torch
from torch import nn
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
import lrfinder_cb  # noqa: F401
from lrfinder_cb.learner import fastai_finder
from lrfinder_cb.all import LRFinderRecord, suggest, between, edge, valley, slide, minimum, steep
from lrfinder_cb.suggest import synthetic_curve


def record(n):
    rec = LRFinderRecord(num_it=n, stop_div=False)
    for lr, loss in zip(*synthetic_curve(n, noise=0.05)): rec.add([lr], loss)
    return rec


def timed(f, repeats, memory=True):
    if repeats > 1: f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); f(); times.append(time.perf_counter() - start)
    if not memory: return statistics.median(times), None
    tracemalloc.start(); f(); peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    return statistics.median(times), peak


def lr_find_run(steps):
    x = torch.randn(256, 4); y = x.sum(1, keepdim=True)
    ds = list(zip(x, y))
    learn = Learner(DataLoaders(DataLoader(ds, bs=32, shuffle=True), DataLoader(ds, bs=32)), nn.Linear(4, 1), loss_func=nn.MSELoss())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with learn.no_bar(): learn.lr_find(num_it=steps, end_lr=1e-1, stop_div=False, show_plot=False)
    return time.perf_counter() - start, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)/1024, learn.recorder.lr_find_record.n_recorded


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--sizes', type=int, nargs='+', default=[1000, 10000, 100000])
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--lr-find-steps', type=int, default=0)
    args = p.parse_args()
    print("| steps | default `suggest` (between) | all six rules | fastai `valley` alone | peak memory, all six rules |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        rec = record(n)
        t_default, _ = timed(lambda: suggest(rec), args.repeats)
        t_all, peak = timed(lambda: suggest(rec, (between, edge, valley, slide, minimum, steep)), args.repeats)
        if n <= 10000:
            lrs, losses = torch.tensor(rec.lrs[n//10:-5]), torch.tensor(rec.smoothed_losses[n//10:-5])
            t_fa = f"{timed(lambda: fastai_finder.valley(lrs, losses, n), 1 if n > 1000 else args.repeats, memory=False)[0]*1e3:,.1f} ms"
        else: t_fa = "not run (O(n^2) in Python)"
        print(f"| {n:,} | {t_default*1e3:,.1f} ms | {t_all*1e3:,.1f} ms | {t_fa} | {peak/2**20:,.1f} MB |")
    if args.lr_find_steps:
        seconds, rss, n = lr_find_run(args.lr_find_steps)
        print(f"\nlr_find(num_it={args.lr_find_steps:,}) on a linear model: {n:,} steps in {seconds:,.0f} s; peak RSS grew by {rss:,.0f} MB")


if __name__ == '__main__': main()
