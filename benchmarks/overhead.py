"""Time lr_find against the floor any in-loop finder pays, and against fastai's own lr_find.

    python benchmarks/overhead.py [--repeats 15] [--num-it 100]

(a) floor: `learn.fit` for exactly `num_it` training batches, validation skipped;
(b) ours: `learn.lr_find(num_it=...)`;
(c) fastai: fastai's `Learner.lr_find`, captured before `lrfinder_cb` is imported.
All three on the same small MLP (scikit-learn digits, CPU), no logging, no progress bar, interleaved; medians reported.
"""
import argparse, statistics, sys, tempfile, time, warnings
warnings.filterwarnings('ignore')
from fastai.learner import Learner
from fastai.callback.core import Callback, CancelFitException, CancelValidException

import lrfinder_cb  # noqa: E402,F401
from lrfinder_cb.learner import fastai_finder  # noqa: E402
FASTAI_LR_FIND = fastai_finder.lr_find
from lrfinder_cb.cli import demo_learner  # noqa: E402


class Floor(Callback):
    "Stop after `num_it` training batches and skip validation: what any finder running inside `fit` costs at least"
    order = 61
    def __init__(self, num_it): self.num_it = num_it
    def before_fit(self): self.done = 0
    def after_batch(self):
        self.done += 1
        if self.done >= self.num_it: raise CancelFitException()
    def before_validate(self): raise CancelValidException()


def timed(f):
    start = time.perf_counter(); f(); return time.perf_counter() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeats', type=int, default=15)
    p.add_argument('--num-it', type=int, default=100)
    args = p.parse_args(argv)
    n = args.num_it
    with tempfile.TemporaryDirectory() as d:
        learn = demo_learner(0, path=d)
        n_epoch = n//len(learn.dls.train) + 1
        runs = {
            'floor (fit, num_it batches)': lambda: learn.fit(n_epoch, 1e-3, cbs=Floor(n)),
            'lrfinder_cb lr_find': lambda: learn.lr_find(end_lr=1., num_it=n, stop_div=False, show_plot=False),
            "fastai's lr_find": lambda: FASTAI_LR_FIND(learn, end_lr=1., num_it=n, stop_div=False, show_plot=False),
        }
        times = {k: [] for k in runs}
        with learn.no_logging(), learn.no_bar():
            for f in runs.values(): f()  # warm-up
            for _ in range(args.repeats):
                for k, f in runs.items(): times[k].append(timed(f))
    floor = statistics.median(times['floor (fit, num_it batches)'])
    print(f"num_it={n}, repeats={args.repeats}, torch threads={__import__('torch').get_num_threads()}")
    print(f"{'run':<30}{'median (ms)':>12}{'vs floor':>10}")
    for k, ts in times.items():
        m = statistics.median(ts)
        print(f"{k:<30}{1000*m:>12.1f}{m/floor:>9.3f}x")


if __name__ == '__main__': sys.exit(main())
