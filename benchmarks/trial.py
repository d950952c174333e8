"""Trials at candidate learning rates (issue 19): does `lr_find(trial=True)` pick better than `between` out of sample, and at what cost?

    python benchmarks/trial.py --set design [--jobs 2]     # the trials on the design runs (cached; about 10 minutes on 2 cores for the 4 budgets)
    python benchmarks/trial.py --set heldout [--jobs 2]    # the held-out runs: only once the rule's constants are frozen
    python benchmarks/trial.py --report [--train] [--out benchmarks/results/trial.md]

Runs on the suggestion benchmark's 220 runs (`suggestion_quality.py`: 44 configurations, 5 seeds, the same `build` and seeds), whose
cache gives each run's range-test record, its 23-point LR grid of real training, and its `between` suggestion.

Per run and trial budget (`BUDGETS` optimizer steps), `learn.trial_lrs` trains the lattice `between * 10**(j/4)`, j = -4..4, each
trial from the same weights and data order (the library's own code, with `repeat=True`: the centre again on another data order), in the
shape of the configuration's recipe (`constant` for `fit`, `one_cycle` for `fit_one_cycle` and for `fine_tune`'s frozen phase), scored
by the validation loss on fixed batches. A trial at one candidate does not depend on the others, so every rule with candidates on the
lattice (`n_candidates` and `factor`) can be replayed offline from this cache, through the library's own decision (`TrialResult`):
the winner if it beats the suggestion by more than `margin` times the noise, else the suggestion. A run whose curve shows no clear
valley keeps `between` (as `lr_find(trial=True)` does).

Protocol, as for the default rule (`suggestion_cv.py`): constants (budget, candidates, factor, margin) by leave-one-group-out on the
8 design groups (worst configuration first, then the median); only out-of-group scores are reported for design; the held-out groups
(every SGD and every `fine_tune` configuration) are run and scored once, with the constants frozen. Every reported pick is trained for
real (`--train`), as the grid was. Cost: the trials' optimizer steps in units of the range test's (its own record), and the measured time
of the trials against the range test's.
"""
import argparse, json, statistics, sys, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import numpy as np
import torch
sys.path.insert(0, str(Path(__file__).parent))
from suggestion_quality import BY_NAME, HELD_OUT_GROUPS, CACHE as SUGGESTION_CACHE, build, run_jobs
import suggestion_cv as cv

CACHE = Path(__file__).parent/'results'/'trial_runs'
BUDGETS = (10, 25, 50, 100)
LATTICE = [j/4 for j in range(-4, 5)] # log10 offsets from `between`
CHOICES = [(3, .25), (3, .5), (3, .75), (3, 1.), (5, .25), (5, .5)] # (n_candidates, log10 factor)
MARGINS = (0., 0.5, 1., 2., 4.)


def recipe_shape(recipe:str) -> str: return 'constant' if recipe.startswith('const') else 'one_cycle'


def run_one(job):
    "Every budget's lattice for one run, resumed from (and saved to) its cache file"
    name, seed, centre, cache = job
    import lrfinder_cb # noqa: F401  (Learner.lr_find, Learner.trial_lrs)
    from fastai.torch_core import set_seed
    torch.set_num_threads(1)
    cfg = BY_NAME[name]
    path = Path(cache)/f"{name}__{seed}.json"
    entry = json.loads(path.read_text()) if path.exists() else dict(config=name, seed=seed, centre=centre, budgets={})
    start = time.time()
    if 'range_seconds' not in entry:
        learn = build(cfg, seed); set_seed(seed)
        t = time.time()
        with learn.no_bar(), learn.no_logging(): learn.lr_find(show_plot=False)
        entry['range_seconds'] = time.time() - t
        entry['range_steps'] = learn.recorder.lr_find_record.n_optimizer_steps
        entry['train_steps'] = len(learn.dls.train)*int(''.join(c for c in cfg['recipe'] if c.isdigit()))
    for budget in BUDGETS:
        if str(budget) in entry['budgets']: continue
        learn = build(cfg, seed); set_seed(seed)
        lrs = [centre*10**x for x in LATTICE]
        with learn.no_bar(), learn.no_logging():
            res = learn.trial_lrs(None, candidates=lrs, n_steps=budget, recipe=recipe_shape(cfg['recipe']), repeat=True)
        entry['budgets'][str(budget)] = dict(lrs=res.lrs, losses=res.losses, repeat=res.repeat_loss, seconds=res.seconds)
        path.write_text(json.dumps(entry))
    path.write_text(json.dumps(entry))
    return name, seed, time.time() - start


# ---------- offline: the rule, replayed ----------
def pick(entry, budget:int, n:int, log_factor:float, margin:float) -> float:
    "What `lr_find(trial=dict(n_steps=budget, n_candidates=n, factor=10**log_factor, margin=margin))` trains at, from the cached lattice"
    from lrfinder_cb.trial import TrialResult
    if entry['no_valley']: return entry['centre']
    b = entry['budgets'][str(budget)]
    step, mid = round(log_factor*4), len(LATTICE)//2
    idx = [mid + k*step for k in range(-(n//2), n//2 + 1)]
    lrs, losses = [b['lrs'][i] for i in idx], [b['losses'][i] for i in idx]
    res = TrialResult(lrs, losses, [np.array([])]*len(idx), b['lrs'][mid], b['repeat'], margin, budget, '', 0, 0.)
    return float(res.lr)


def params():
    return [(b, n, f, m) for b in BUDGETS for n, f in CHOICES for m in MARGINS]


def fmt(p): return f"{p[0]} steps, {p[1]} candidates, factor 10^{p[2]:g}, margin {p[3]:g}"


def load(cache, suggestion_cache):
    "The suggestion benchmark's runs with a complete trial cache entry, each with its entry"
    from lrfinder_cb.suggest import suggest, between
    runs, entries = [], []
    for r in cv.load(suggestion_cache):
        path = Path(cache)/f"{r.config}__{r.seed}.json"
        if not path.exists(): continue
        e = json.loads(path.read_text())
        if len(e.get('budgets', {})) < len(BUDGETS): continue
        e['no_valley'] = suggest(r.record, [between], warn=False).no_clear_valley
        runs.append(r); entries.append(e)
    return runs, entries


def cost(runs, entries, p):
    "Median over runs of the trials' cost in range tests: optimizer steps, and measured time"
    budget, n = p[0], p[1]
    steps = [(n + 1)*budget/e['range_steps'] for e in entries]
    secs = [(n + 1)/(len(LATTICE) + 1)*e['budgets'][str(budget)]['seconds']/e['range_seconds'] for e in entries]
    share = [(n + 1)*budget/e['train_steps'] for e in entries]
    return statistics.median(steps), statistics.median(secs), statistics.median(share)


def cross_validate(runs, entries):
    "Out-of-group picks for every run, and the constants each fold chose"
    grid = params()
    table = np.array([[pick(e, *p) for r, e in zip(runs, entries)] for p in grid])
    groups = sorted({r.group for r in runs})
    lrs, chosen = np.zeros(len(runs)), {}
    for g in groups:
        inside = [i for i, r in enumerate(runs) if r.group != g]
        best = cv.choose({j: cv.per_config([runs[i] for i in inside], table[j, inside]).values() for j in range(len(grid))})
        chosen[g] = grid[best]
        for i, r in enumerate(runs):
            if r.group == g: lrs[i] = table[best, i]
    everything = grid[cv.choose({j: cv.per_config(runs, table[j]).values() for j in range(len(grid))})]
    return lrs, chosen, everything


FROZEN = (50, 3, 0.25, 1.) # chosen on all design groups (steps, candidates, log10 factor, margin), frozen before the held-out groups were run


def report(cache, suggestion_cache):
    runs, entries = load(cache, suggestion_cache)
    design = [(r, e) for r, e in zip(runs, entries) if r.group not in HELD_OUT_GROUPS]
    held = [(r, e) for r, e in zip(runs, entries) if r.group in HELD_OUT_GROUPS]
    between = next(iter(cv.SHIPPED.values()))
    minimum = cv.FIXED['fastai minimum']
    out = []
    if design:
        dr, de = map(list, zip(*design))
        lrs, folds, constants = cross_validate(dr, de)
        fold_costs = [cost(dr, de, p) for p in folds.values()]
        out += [f"## Design groups, out of group ({len({r.config for r in dr})} configurations in {len({r.group for r in dr})} groups, "
                f"{len(dr)} runs)\n", cv.HEADER, cv.floor_row(dr),
                cv.row('fastai minimum', dr, [minimum(r) for r in dr]), cv.row('**between** (the default)', dr, [between(r) for r in dr]),
                cv.row('trial, constants chosen out of group', dr, lrs)]
        out.append("\nConstants chosen per left-out group, and on all design groups (cost: steps in range tests / time in range tests / "
                   "share of the full training's steps, medians over runs):\n")
        for g, p in folds.items(): out.append(f"- {g}: {fmt(p)}")
        c = cost(dr, de, constants)
        out.append(f"- **all design groups: {fmt(constants)}**; cost {c[0]:.1f} range tests of steps, {c[1]:.1f} of time, "
                   f"{100*c[2]:.0f}% of the full training's steps")
        out.append(f"- the folds' choices cost {min(x[0] for x in fold_costs):.1f} to {max(x[0] for x in fold_costs):.1f} range tests of steps")
    if held and FROZEN is not None:
        hr, he = map(list, zip(*held))
        c = cost(hr, he, FROZEN)
        out += [f"\n## Held out ({len({r.config for r in hr})} configurations, {len(hr)} runs), run once with the constants frozen: {fmt(FROZEN)}\n",
                cv.HEADER, cv.floor_row(hr), cv.row('fastai minimum', hr, [minimum(r) for r in hr]),
                cv.row('**between** (the default)', hr, [between(r) for r in hr]),
                cv.row(f'trial ({fmt(FROZEN)})', hr, [pick(e, *FROZEN) for r, e in zip(hr, he)]),
                f"\nCost on the held-out runs (medians): {c[0]:.1f} range tests of optimizer steps, {c[1]:.1f} of time, "
                f"{100*c[2]:.0f}% of the full training's steps."]
        switched = [pick(e, *FROZEN) != e['centre'] for r, e in zip(hr, he)]
        out.append(f"The trial moved away from `between` in {sum(switched)} of {len(switched)} held-out runs.")
        floor, _ = cv.noise_floor(hr)
        cols = [cv.per_config(hr, [f(r) for r in hr], real=True) for f in (minimum, between)]
        cols.append(cv.per_config(hr, [pick(e, *FROZEN) for r, e in zip(hr, he)], real=True))
        out += ["\nHeld out, per configuration (score, mean over seeds):\n",
                "| configuration | recipe | noise floor | fastai minimum | between | trial |", "|---|---|---:|---:|---:|---:|"]
        for c in dict.fromkeys(r.config for r in hr):
            recipe = next(r.recipe for r in hr if r.config == c)
            out.append(f"| {c} | {recipe} | {floor[c]:.2f} | " + " | ".join(f"{col[c]:.2f}" for col in cols) + " |")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--set', choices=('design', 'heldout'))
    p.add_argument('--report', action='store_true')
    p.add_argument('--train', action='store_true', help="train every reported pick the suggestion cache lacks, then report")
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--cache', default=str(CACHE))
    p.add_argument('--suggestion-cache', default=str(SUGGESTION_CACHE))
    p.add_argument('--out')
    args = p.parse_args(argv)
    cache = Path(args.cache); cache.mkdir(parents=True, exist_ok=True)
    if args.set:
        if args.set == 'heldout' and FROZEN is None: p.error("--set heldout: freeze the constants first (FROZEN, from the design report)")
        from lrfinder_cb.suggest import suggest, between
        runs = [r for r in cv.load(args.suggestion_cache) if (r.group in HELD_OUT_GROUPS) == (args.set == 'heldout')]
        jobs = [(r.config, r.seed, float(suggest(r.record, [between], warn=False)[0]), str(cache)) for r in runs]
        run_jobs(run_one, jobs, args.jobs, cache)
    if args.report:
        text = report(cache, args.suggestion_cache)
        if cv.NEEDED and args.train:
            cv.train_needed(args.suggestion_cache, sorted(cv.NEEDED), args.jobs)
            cv.NEEDED.clear()
            text = report(cache, args.suggestion_cache)
        if cv.NEEDED: text += f"\n\n({len(cv.NEEDED)} reported picks were never trained: read off the grid; `--train` trains them)"
        print(text)
        if args.out: Path(args.out).write_text(text + "\n")


if __name__ == '__main__': sys.exit(main())
