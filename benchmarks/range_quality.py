"""How good is `SuggestedLRs.range`? Re-scored offline on the range tests and grid losses of the suggestion benchmark (issues 9, 10).

    python benchmarks/range_quality.py [--cache benchmarks/results/suggestion_runs]

For every run of `suggestion_quality.py` (44 configurations, 5 seeds): the range read off the stored range-test record by today's
`suggest`, then
- coverage: is the grid's best learning rate inside the range? and if not, is it above?
- safety: the worst score (share of the 23 grid learning rates that train better) of any grid learning rate inside the range,
  and how many grid points (4 a decade) the range holds.
Design and held-out groups are reported apart: the range's upper end reaches `between`, whose constants were chosen on the design groups.
"""
import argparse, statistics, sys, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))
from suggestion_cv import CACHE, HELD_OUT_GROUPS, load
from lrfinder_cb.all import suggest


def evaluate(run, to_edge=False):
    "Coverage and safety of the range of `run`'s record (`to_edge`: of the range as it was before `between`, ending at `edge`)"
    res = suggest(run.record, warn=False)
    if res.range is None: return dict(range=None, covered=False, above=False, inside=0, worst=None)
    lo, hi = np.log10((res.range[0], res.edge) if to_edge else res.range)
    inside = [i for i, x in enumerate(run.glr) if lo - 1e-9 <= x <= hi + 1e-9]
    best = float(np.log10(run.best_lr))
    worst = max(float(np.mean(run.gloss < run.gloss[i])) for i in inside) if inside else None
    return dict(range=res.range, covered=lo - 1e-9 <= best <= hi + 1e-9, above=best > hi + 1e-9, inside=len(inside), worst=worst)


def summary(name, rows):
    ranged = [r for r in rows if r['range'] is not None]
    worst = [r['worst'] for r in ranged if r['worst'] is not None]
    return (f"| {name} | {len(rows)} | {len(rows) - len(ranged)} | {sum(r['covered'] for r in ranged)}/{len(ranged)} | "
            f"{sum(r['above'] for r in ranged)} | {statistics.median(r['inside'] for r in ranged):.0f} | "
            f"{statistics.median(worst):.2f} | {max(worst):.2f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--cache', default=str(CACHE))
    runs = load(p.parse_args(argv).cache)
    rows = [(r, evaluate(r)) for r in runs]
    print("| runs | n | no range (no clear valley) | best grid LR inside | best above the range | grid points inside (median) | "
          "worst score inside: median | worst score inside: max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(summary("design groups", [e for r, e in rows if r.group not in HELD_OUT_GROUPS]))
    print(summary("held out", [e for r, e in rows if r.group in HELD_OUT_GROUPS]))
    print(summary("held out, the range ending at `edge`", [evaluate(r, to_edge=True) for r in runs if r.group in HELD_OUT_GROUPS]))


if __name__ == '__main__': main()
