"""How good is `SuggestedLRs.range`? Re-scored offline on the records and grid losses of the first, six-task suggestion benchmark (issue 10).

    python benchmarks/range_quality.py [--results benchmarks/results/suggestion_quality.json]

For every task and seed: the range read off the stored range-test record, then
- coverage: is the grid's best learning rate inside the range?
- safety: the worst score (share of grid learning rates that train better) of any grid learning rate inside the range,
  and how many grid points (4 a decade) the range holds.
The records were recorded with the stop rule of the time (`4 x best`); suggestions and ranges are re-computed from them with today's code.
"""
import argparse, json, statistics, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
from lrfinder_cb.all import LRFinderRecord, suggest

GRID = [10**(-5 + i/4) for i in range(21)]


def score(loss, grid_losses): return sum(g < loss for g in grid_losses)/len(grid_losses)


def rebuild(data) -> LRFinderRecord:
    rec = LRFinderRecord(**{k: v for k, v in data['settings'].items() if k in LRFinderRecord.settings_names})
    rec.lrs, rec.group_lrs, rec.losses, rec.smoothed_losses = data['lrs'], [tuple(g) for g in data['group_lrs']], data['losses'], data['smoothed_losses']
    rec.stop_reason = data['stop_reason']
    return rec


def evaluate(entry):
    res = suggest(rebuild(entry['record']), warn=False)
    grid = entry['grid']
    best = GRID[min(range(len(grid)), key=grid.__getitem__)]
    if res.range is None: return dict(range=None, covered=False, inside=0, worst=None, above=False)
    lo, hi = res.range
    inside = [score(g, grid) for lr, g in zip(GRID, grid) if lo*(1-1e-9) <= lr <= hi*(1+1e-9)]
    return dict(range=(lo, hi), covered=lo*(1-1e-9) <= best <= hi*(1+1e-9), inside=len(inside), worst=max(inside) if inside else None,
                above=best > hi*(1+1e-9))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--results', default=str(Path(__file__).parent/'results'/'suggestion_quality.json'))
    results = json.loads(Path(p.parse_args().results).read_text())
    by_task = {}
    for key, entry in results.items(): by_task.setdefault(key.split('/')[0], []).append(evaluate(entry))
    print("| task | coverage (best grid LR inside) | best above the range | grid points inside (per seed) | worst score inside (per seed) | no range |")
    print("|---|---|---|---|---|---|")
    everything = []
    for task, rows in by_task.items():
        everything += rows
        worst = [f"{r['worst']:.2f}" if r['worst'] is not None else '-' for r in rows]
        print(f"| {task} | {sum(r['covered'] for r in rows)}/{len(rows)} | {sum(r['above'] for r in rows)} | {', '.join(str(r['inside']) for r in rows)} | {', '.join(worst)} | {sum(r['range'] is None for r in rows)} |")
    worst_all = [r['worst'] for r in everything if r['worst'] is not None]
    print(f"\nAll {len(everything)} runs: coverage {sum(r['covered'] for r in everything)}/{len(everything)} "
          f"(best above the range in {sum(r['above'] for r in everything)}); "
          f"worst score inside a range: median {statistics.median(worst_all):.2f}, max {max(worst_all):.2f}; "
          f"median grid points inside {statistics.median(r['inside'] for r in everything):.0f}")


if __name__ == '__main__': main()
