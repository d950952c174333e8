"""What the validation probe costs (issue 11): `lr_find` on the demo learner, plain, with the probe, and with a full validation at every step.

    python benchmarks/probe_cost.py [--repeats 7]

All runs do exactly 100 optimizer steps (`end_lr=1`, `stop_div=False`), no progress bar; median wall time of `--repeats` interleaved runs.
"A full validation at every step" is what torch-lr-finder's validation mode does: here `valid_every=1` with every batch of `dls.valid`.
"""
import argparse, statistics, time, warnings
warnings.filterwarnings('ignore')
import lrfinder_cb  # noqa: F401
from lrfinder_cb.cli import demo_learner


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--repeats', type=int, default=7)
    args = p.parse_args()
    learn = demo_learner(0)
    n_valid = len(learn.dls.valid)
    runs = {'plain lr_find': {}, 'probe: 2 batches every 5 steps': dict(valid_every=5, valid_batches=2),
            'probe: 2 batches every step': dict(valid_every=1, valid_batches=2),
            f'full validation every step ({n_valid} batches)': dict(valid_every=1, valid_batches=n_valid)}
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, kwargs in runs.items():
            start = time.perf_counter()
            with learn.no_bar(): learn.lr_find(num_it=100, end_lr=1., stop_div=False, show_plot=False, **kwargs)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times['plain lr_find'])
    print("| run | median (s) | vs plain |\n|---|---:|---:|")
    for name, ts in times.items(): print(f"| {name} | {statistics.median(ts):.3f} | {statistics.median(ts)/base:.2f}x |")


if __name__ == '__main__': main()
