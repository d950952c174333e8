"""Which suggestion rule holds out of sample? Offline scores, leave-one-group-out cross-validation and the held-out table (issue 9).

    python benchmarks/suggestion_cv.py [--cache benchmarks/results/suggestion_runs] [--out benchmarks/results/suggestion_cv.md]

Reads what `suggestion_quality.py` cached (range-test records and validation losses on a 23-point LR grid, per configuration
and seed). Every suggestion a table reports is trained for real (`--train` trains those not yet in the cache, from the run's
initial weights and seed, as the grid was, and stores them): its validation loss is the one it reached. Choosing constants
inside cross-validation needs the loss at learning rates nobody trained, so there it is read off the run's grid: linear in
log10(lr) between the two grid points around it (the nearer one if either diverged; the end point outside the grid).

- **score**: the share of grid learning rates whose validation loss is lower (0 = as good as the grid's best). A configuration's
  score is the mean over its seeds; tables give the median, worst and mean over configurations.
- **regret**: the validation loss's excess over the grid's best, in % of the best (a diverged run counts as the worst finite
  grid loss); median over runs and the worst configuration's mean.
- **noise floor**: per run, the score of the best grid LR of each *other* seed of the same configuration: what knowing the answer
  for another seed is worth.
- **protocol**: the held-out groups (every SGD configuration, every `fine_tune` one) were fixed before any design work and are
  scored once, with the rules frozen. On the other groups, every rule family's constants are chosen by leave-one-group-out
  cross-validation (criterion: the worst configuration first, the median second), and only out-of-group scores are reported.
  The default is the family with the best out-of-group worst case; a difference below `TIE` counts as a tie, settled by the median.
"""
import argparse, itertools, json, math, statistics, sys, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import numpy as np
import torch
sys.path.insert(0, str(Path(__file__).parent))
from suggestion_quality import CACHE, HELD_OUT_GROUPS, BY_NAME
from lrfinder_cb.core import LRFinderRecord, zero_lag_smooth
from lrfinder_cb.suggest import prepare_curve, _fall_done, suggest, between
from lrfinder_cb.learner import fastai_finder

TIE = 0.01
NEEDED = set() # (config, seed, lr key) of suggestions a table wanted trained for real and found untrained


# ---------- the data ----------
def rebuild(d) -> LRFinderRecord:
    rec = LRFinderRecord(**{k: v for k, v in d['settings'].items() if k in LRFinderRecord.settings_names})
    rec.lrs, rec.group_lrs, rec.losses, rec.smoothed_losses = d['lrs'], [tuple(g) for g in d['group_lrs']], d['losses'], d['smoothed_losses']
    rec.stop_reason = d['stop_reason']
    return rec


class Run:
    "One configuration and seed: its curves (prepared as `suggest` prepares them) and its grid"
    def __init__(self, entry, which='record'):
        self.config, self.seed = entry['config']['name'], entry['seed']
        self.group, self.recipe = entry['config']['group'], entry['config']['recipe']
        rec = rebuild(entry[which])
        self.record = rec
        self.lrs, self.raw, _ = prepare_curve(rec.lrs, rec.losses, rec.n_planned)
        self.ema_lrs, self.ema, _ = prepare_curve(rec.lrs, rec.smoothed_losses, rec.n_planned)
        self.smooth = zero_lag_smooth(self.lrs, self.raw)
        grid = sorted((float(k), v) for k, v in entry['grid'].items())
        self.glr = np.log10([g[0] for g in grid])
        finite = [v for _, v in grid if v is not None]
        self.gloss = np.array([math.inf if v is None else v for _, v in grid])
        self.best, self.worst_finite = min(finite), max(finite)
        self.best_lr = 10**self.glr[int(np.argmin(self.gloss))]
        self.trained = {k: math.inf if v is None else v for k, v in entry.get('trained', {}).items()}

    def loss_at(self, lr, real=False):
        "The validation loss at `lr`: trained for real when `real` and it was (else noted in `NEEDED`), or read off the grid"
        if real:
            key = f"{lr:.6e}"
            if key in self.trained: return self.trained[key]
            NEEDED.add((self.config, self.seed, key))
        x = float(np.clip(math.log10(lr), self.glr[0], self.glr[-1]))
        i = int(np.clip(np.searchsorted(self.glr, x) - 1, 0, len(self.glr) - 2))
        t = (x - self.glr[i])/(self.glr[i+1] - self.glr[i])
        a, b = self.gloss[i], self.gloss[i+1]
        if math.isfinite(a) and math.isfinite(b): return a + t*(b - a)
        return a if t < 0.5 else b

    def score(self, lr, real=False): return float(np.mean(self.gloss < self.loss_at(lr, real)))

    def regret(self, lr, real=False):
        loss = self.loss_at(lr, real)
        return 100*((loss if math.isfinite(loss) else self.worst_finite)/self.best - 1)


def load(cache, which='record'):
    entries = [json.loads(p.read_text()) for p in sorted(Path(cache).glob('*.json'))]
    runs = []
    for e in entries:
        if 'record' in e and len(e['grid']) == 23 and e['config']['name'] in BY_NAME: runs.append(Run(e, which))
    return runs


# ---------- the rules: fastai's four, as shipped, and families with constants ----------
def fastai_rule(f):
    def run(r):
        return float(f(torch.tensor(r.ema_lrs, dtype=torch.float32), torch.tensor(r.ema, dtype=torch.float32), r.record.num_it)[0])
    return run

def _bottom(r): return int(np.argmin(r.smooth))

def _steepest(r):
    "Where the lag-free curve falls fastest (per decade), before its bottom"
    b = _bottom(r)
    if b < 2: return r.lrs[b]
    g = np.gradient(r.smooth[:b+1], np.log10(r.lrs[:b+1]))
    return r.lrs[int(np.argmin(g))]

def _blowup(r):
    "The first learning rate after the bottom where the lag-free curve is back above its starting level (else the last)"
    b = _bottom(r)
    top = float(np.median(r.smooth[:max(3, b//5 + 1)]))
    above = np.flatnonzero(r.smooth[b:] > top)
    return r.lrs[b + above[0]] if len(above) else r.lrs[-1]

def _width(r):
    "Decades over which the lag-free curve stays within 10% of its fall of the bottom: how flat the bottom is"
    b = _bottom(r)
    top = float(np.median(r.smooth[:max(3, b//5 + 1)]))
    near = r.smooth <= r.smooth[b] + 0.1*(top - r.smooth[b])
    lo, hi = b, b
    while lo > 0 and near[lo-1]: lo -= 1
    while hi < len(near) - 1 and near[hi+1]: hi += 1
    return math.log10(r.lrs[hi]/r.lrs[lo])

def _edge(r, frac, cap): return min(r.lrs[_bottom(r)], cap*r.lrs[_fall_done(r.smooth, frac)])

_DEC = [10**(i/8) for i in range(0, 13)] # 1 to 10**1.5, 8 a decade
_SYM = [10**(i/8) for i in range(-4, 9)] # 10**-.5 to 10

FIXED = {
    'fastai minimum': fastai_rule(fastai_finder.minimum),
    'fastai steep': fastai_rule(fastai_finder.steep),
    'fastai valley': fastai_rule(fastai_finder.valley),
    'fastai slide': fastai_rule(fastai_finder.slide),
    'edge (as shipped: 0.9, x2)': lambda r: _edge(r, 0.9, 2.),
}

def _oc_or_const(r): return 'const' if r.recipe.startswith('const') else 'oc'

FAMILIES = { # name -> (function(run, *params), list of parameter tuples)
    'edge(frac, cap)': (_edge, list(itertools.product((.5, .6, .7, .8, .9, .95), (1., 1.5, 2., 3., 4., math.inf)))),
    'lag-free bottom / k': (lambda r, k: r.lrs[_bottom(r)]/k, [(k,) for k in _DEC]),
    'EMA bottom / k (fastai minimum: k=10)': (lambda r, k: r.ema_lrs[int(np.argmin(r.ema))]/k, [(k,) for k in _DEC + [10**(i/8) for i in range(13, 17)]]),
    'steepest fall x k': (lambda r, k: _steepest(r)*k, [(k,) for k in _SYM]),
    'frac of fall done x k': (lambda r, f, k: r.lrs[_fall_done(r.smooth, f)]*k, list(itertools.product((.5, .7, .9), _SYM))),
    'steepest^(1-w) bottom^w x k': (lambda r, w, k: _steepest(r)**(1-w)*r.lrs[_bottom(r)]**w*k,
                                    list(itertools.product((.25, .5, .75), [10**(i/8) for i in range(-4, 5)]))),
    'blow-up / k': (lambda r, k: _blowup(r)/k, [(k,) for k in [10**(i/8) for i in range(4, 21)]]),
    'lag-free bottom / (k 10^(a width of bottom))': (lambda r, k, a: r.lrs[_bottom(r)]/(k*10**(a*_width(r))),
                                                   list(itertools.product(_DEC, (0.25, 0.5, 0.75, 1.)))),
    'EMA bottom^w lag-free bottom^(1-w) / k': (lambda r, w, k: r.ema_lrs[int(np.argmin(r.ema))]**w*r.lrs[_bottom(r)]**(1-w)/k,
                                               list(itertools.product((.25, .5, .75), _DEC + [10**(i/8) for i in range(13, 17)]))),
    'lag-free bottom / k, k per recipe (hint)': (lambda r, ko, kc: r.lrs[_bottom(r)]/(kc if _oc_or_const(r) == 'const' else ko),
                                                 list(itertools.product(_DEC, _DEC))),
}


# ---------- scoring ----------
def per_config(runs, lrs, field='score', real=False):
    "Mean over seeds of each configuration's score (or regret): {config: value}; `real`: from training at each suggestion, where done"
    out = {}
    for r, lr in zip(runs, lrs): out.setdefault(r.config, []).append(getattr(r, field)(lr, real))
    return {c: float(np.mean(v)) for c, v in out.items()}

def stats(values): v = list(values); return dict(median=statistics.median(v), worst=max(v), mean=float(np.mean(v)))

def choose(candidates: dict):
    "The key of the best of `candidates` ({key: per-config values}): the lowest worst case; any within `TIE` of it tie, and the lowest median wins"
    s = {k: stats(v) for k, v in candidates.items()}
    lowest = min(x['worst'] for x in s.values())
    return min((k for k, x in s.items() if x['worst'] < lowest + TIE), key=lambda k: s[k]['median'])

def noise_floor(runs):
    "Per run: mean score (and regret) over the other seeds' best grid LRs"
    by = {}
    for r in runs: by.setdefault(r.config, []).append(r)
    scores, regrets = {}, {}
    for c, rs in by.items():
        s = [np.mean([r.score(o.best_lr) for o in rs if o is not r]) for r in rs]
        g = [np.mean([r.regret(o.best_lr) for o in rs if o is not r]) for r in rs]
        scores[c], regrets[c] = float(np.mean(s)), (float(np.mean(g)), [float(x) for x in g])
    return scores, regrets

def cross_validate(runs, family):
    "Out-of-group suggestions for every run, and the constants each fold chose"
    f, grid = FAMILIES[family]
    table = np.array([[f(r, *p) for r in runs] for p in grid]) # params x runs
    groups = sorted({r.group for r in runs})
    lrs, chosen = np.zeros(len(runs)), {}
    for g in groups:
        inside = [i for i, r in enumerate(runs) if r.group != g]
        best = choose({j: per_config([runs[i] for i in inside], table[j, inside]).values() for j in range(len(grid))})
        chosen[g] = grid[best]
        for i, r in enumerate(runs):
            if r.group == g: lrs[i] = table[best, i]
    everything = choose({j: per_config(runs, table[j]).values() for j in range(len(grid))})
    return lrs, chosen, grid[everything]


def row(name, runs, lrs):
    "A table row, scored on real training at each suggestion"
    s = stats(per_config(runs, lrs, real=True).values())
    reg = per_config(runs, lrs, 'regret', real=True)
    run_regrets = [r.regret(lr, True) for r, lr in zip(runs, lrs)]
    return (f"| {name} | {s['median']:.2f} | {s['worst']:.2f} | {s['mean']:.2f} | {statistics.median(run_regrets):.1f}% | "
            f"{max(reg.values()):.0f}% |")

HEADER = ("| rule | median score | worst score | mean score | median regret | worst regret |\n"
          "|---|---:|---:|---:|---:|---:|")

def floor_row(runs):
    scores, regrets = noise_floor(runs)
    s = stats(scores.values())
    all_regrets = [x for _, xs in regrets.values() for x in xs]
    return (f"| *noise floor: another seed's best grid LR* | {s['median']:.2f} | {s['worst']:.2f} | {s['mean']:.2f} | "
            f"{statistics.median(all_regrets):.1f}% | {max(m for m, _ in regrets.values()):.0f}% |")


def fastai_default(r):
    "What fastai trains at without a range test: `learn.lr` (1e-3) for fit and fit_one_cycle, `base_lr=2e-3` for fine_tune"
    return 2e-3 if r.recipe.startswith('ft') else 1e-3

DEFAULT_ROW = "fastai's default learning rate, no range test (1e-3; `fine_tune` 2e-3)"

def shipped(r):
    "The default's suggestion; with no clear valley there is none (issue 28), and a user trains at fastai's default instead"
    lr = suggest(r.record, [between], warn=False)[0]
    return fastai_default(r) if math.isnan(lr) else lr

SHIPPED = {"**between** (shipped default; fastai's default rate when there is no valley)": shipped}


def report(runs, runs3=None):
    "Markdown: the noise floor and the out-of-group table on the design groups; the held-out table, every family at its design constants"
    design = [r for r in runs if r.group not in HELD_OUT_GROUPS]
    held = [r for r in runs if r.group in HELD_OUT_GROUPS]
    out = [f"## Design groups, out of group ({len({r.config for r in design})} configurations in {len({r.group for r in design})} groups, "
           f"{len(design)} runs)\n", HEADER, floor_row(design), row(DEFAULT_ROW, design, [fastai_default(r) for r in design])]
    for name, f in FIXED.items(): out.append(row(name, design, [f(r) for r in design]))
    frozen, folds, constants = {}, {}, {}
    for fam in FAMILIES:
        lrs, folds[fam], constants[fam] = cross_validate(design, fam)
        frozen[f"{fam} at {tuple(round(x, 3) for x in constants[fam])}"] = lambda r, f=FAMILIES[fam][0], p=constants[fam]: f(r, *p)
        out.append(row(fam + ' (constants chosen out of group)', design, lrs))
    design3 = [r for r in runs3 if r.group not in HELD_OUT_GROUPS] if runs3 else []
    for fam in (('edge(frac, cap)', 'lag-free bottom / k') if design3 else ()):
        lrs, _, _ = cross_validate(design3, fam)
        out.append(row(fam + ' on the median curve of `n_runs=3` (constants chosen out of group)', design3, lrs))
    out.append("\nConstants chosen per left-out group, and on all design groups:\n")
    fmt = lambda p: '(' + ', '.join(f'{x:.3g}' for x in p) + ')'
    for fam, chosen in folds.items():
        out.append(f"- {fam}: " + '; '.join(f"{g} {fmt(p)}" for g, p in chosen.items()) + f"; **all {fmt(constants[fam])}**")
    if held:
        out += [f"\n## Held out ({len({r.config for r in held})} configurations, {len(held)} runs), run once with frozen rules\n", HEADER, floor_row(held),
                row(DEFAULT_ROW, held, [fastai_default(r) for r in held])]
        for name, f in {**FIXED, **SHIPPED, **frozen}.items(): out.append(row(name, held, [f(r) for r in held]))
    return "\n".join(out)


def detail(runs, rules):
    "Markdown: each configuration's score (mean over seeds) under each rule, beside its noise floor and best grid LRs"
    floor, _ = noise_floor(runs)
    cols = {name: per_config(runs, [f(r) for r in runs], real=True) for name, f in rules.items()}
    out = ["| configuration | group | recipe | best grid LRs (seeds) | noise floor | " + " | ".join(rules) + " |",
           "|---|---|---|---|---:|" + "---:|"*len(rules)]
    for c in dict.fromkeys(r.config for r in runs):
        rs = [r for r in runs if r.config == c]
        best = ', '.join(f"{r.best_lr:.2g}" for r in rs)
        out.append(f"| {c} | {rs[0].group} | {rs[0].recipe} | {best} | {floor[c]:.2f} | " + " | ".join(f"{cols[n][c]:.2f}" for n in rules) + " |")
    return "\n".join(out)


def _train_file(job):
    "Train one run's missing suggestions, saving its cache file after each"
    path, keys = job
    import torch
    from suggestion_quality import train
    torch.set_num_threads(1)
    entry = json.loads(Path(path).read_text())
    trained = entry.setdefault('trained', {})
    for key in keys:
        if key in trained: continue
        trained[key] = train(BY_NAME[entry['config']['name']], entry['seed'], float(key))
        Path(path).write_text(json.dumps(entry))
    return path, len(keys)


def train_needed(cache, needed, jobs=2):
    "Train every suggestion in `needed` ((config, seed, lr key)) from the run's initial weights and seed, as the grid was"
    by_file = {}
    for config, seed, key in needed: by_file.setdefault(str(Path(cache)/f"{config}__{seed}.json"), []).append(key)
    import multiprocessing as mp
    with mp.get_context('spawn').Pool(jobs) as pool:
        for path, n in pool.imap_unordered(_train_file, sorted(by_file.items())): print(f"trained {n} suggestions: {Path(path).name}", file=sys.stderr, flush=True)


def tables(cache):
    "Every table, as markdown"
    runs = load(cache)
    text = report(runs, load(cache, 'record3'))
    held = [r for r in runs if r.group in HELD_OUT_GROUPS]
    if held:
        rules = {'between': next(iter(SHIPPED.values())), 'fastai minimum': FIXED['fastai minimum'], 'fastai valley': FIXED['fastai valley'],
                 'edge': FIXED['edge (as shipped: 0.9, x2)']}
        text += "\n\nHeld out, per configuration (score, mean over seeds):\n\n" + detail(held, rules)
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--cache', default=str(CACHE))
    p.add_argument('--out', default=None)
    p.add_argument('--train', action='store_true', help="train every reported suggestion not yet trained (minutes), then report")
    p.add_argument('--jobs', type=int, default=2)
    args = p.parse_args(argv)
    text = tables(args.cache)
    if NEEDED and args.train:
        train_needed(args.cache, sorted(NEEDED), args.jobs)
        NEEDED.clear()
        text = tables(args.cache)
    if NEEDED: text += (f"\n\n({len(NEEDED)} reported suggestions were never trained: their losses are read off the grid; "
                        "`--train` trains them)")
    print(text)
    if args.out: Path(args.out).write_text(text + "\n")


if __name__ == '__main__': sys.exit(main())
