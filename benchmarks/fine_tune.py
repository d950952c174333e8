"""Fine-tuning with the range test (issue 18): `fine_tune(base_lr='find')` and its second-phase rules, against fastai's default
`fine_tune(base_lr=2e-3)`, against `fine_tune(base_lr=valley)` (what fastai's docs suggest) and against the grid's best.

    python benchmarks/fine_tune.py --set design [--jobs 2]    # the design configurations: grid and every method (about 20 minutes)
    python benchmarks/fine_tune.py --set heldout [--jobs 2]   # the held-out ones, once the rule is frozen (about 5 minutes)
    python benchmarks/fine_tune.py --report [--out benchmarks/results/fine_tune.md]

Every figure is real training from the run's initial weights and seed, as in the suggestion benchmark (`suggestion_quality.py`,
whose `build`, `train` and score this reuses): score = the share of the 23 grid learning rates whose `fine_tune(base_lr=lr)`
reaches a lower final validation loss (0 = as good as the grid's best); a configuration's score is the mean over its 5 seeds.

- **Design** (`DESIGN`, new here; none of them is in the suggestion benchmark, so its tables do not move): 8 `fine_tune`
  configurations in 3 groups, each body pre-trained on a related task (`suggestion_quality._pretrained`). The second-phase rule is
  chosen by leave-one-group-out: for each group, the rule that is best on the other groups (worst configuration first, then the
  median; `suggestion_cv.choose`), scored on the group left out.
- **Held out**: the suggestion benchmark's `heldout_ft` group (4 configurations, fixed before any design work; their grid is that
  benchmark's). Scored once, with the rule frozen.

Methods, per run:
- `find: <rule>`: `fine_tune(n, base_lr='find')` for `frozen` (what ships), this file's `find_and_fine_tune` for the others; the rules differ
  only in the unfrozen phase: `spread` (a second range test, fastai's `slice(lr/lr_mult, lr)` around its suggestion), `range` (a second
  range test, its `res.slice()`), `frozen` (no second test: fastai's own `slice(lr/2/lr_mult, lr/2)` from the frozen test's `lr`);
- `fastai default`: `fine_tune(n)` (`base_lr=2e-3`);
- `fastai valley`: `fine_tune(n, base_lr=valley)`, fastai's valley rule on the frozen range test's curve (`lr_find()`'s defaults).
"""
import argparse, json, math, statistics, sys, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import numpy as np
import torch
sys.path.insert(0, str(Path(__file__).parent))
from suggestion_quality import C, BY_NAME, GRID, CACHE as SUGGESTION_CACHE, build, train, range_test, final_valid_loss, run_jobs
from suggestion_cv import choose, stats, TIE

CACHE = Path(__file__).parent/'results'/'fine_tune_runs'
DESIGN = [
    C('digits_mlp_ft_parity', 'ft_digits', 'digits', 'mlp', recipe='ft3', pretrain='digits_parity'),
    C('digits_cnn_bn_ft_0to4', 'ft_digits', 'digits', 'cnn_bn', recipe='ft3', pretrain='digits_0to4'),
    C('digits_resnet_ft1_parity', 'ft_digits', 'digits', 'resnet', recipe='ft1', pretrain='digits_parity', bs=32),
    C('blobs_resmlp_ft', 'ft_blobs', 'blobs', 'resmlp', recipe='ft3', pretrain='blobs_pairs'),
    C('blobs_large_ft', 'ft_blobs', 'blobs_large', 'mlp', recipe='ft3', pretrain='blobs_pairs', bs=256),
    C('blobs_ft_radam', 'ft_blobs', 'blobs', 'mlp_dropout', opt='radam', recipe='ft3', pretrain='blobs_pairs', bs=128),
    C('sine_bn_ft', 'ft_regression', 'sine', 'mlp_bn', loss='mse', recipe='ft3', pretrain='sine_squared'),
    C('sine_large_ft5', 'ft_regression', 'sine_large', 'mlp', loss='mse', recipe='ft5', pretrain='sine_squared', bs=512),
]
HELD_OUT = [c for c in BY_NAME.values() if c['group'] == 'heldout_ft']
CONFIGS = {c['name']: c for c in DESIGN + HELD_OUT}
RULES = ('spread', 'range', 'frozen')
SHIPPED = 'frozen' # what `fine_tune(base_lr='find')` does: one range test, on the frozen model (chosen on the design groups)


# ---------- running ----------
def _second_test(learn, lr_mult, use_range) -> slice:
    "The rules that lost: a second range test after the unfreeze, then fastai's spread around its suggestion, or its safe range"
    res = learn.lr_find(show_plot=False)
    if not len(res) or res.no_clear_valley: return None
    return res.slice() if use_range and res.range is not None else slice(res[0]/lr_mult, res[0])


def find_and_fine_tune(cfg, seed, rule):
    """`fine_tune(n, base_lr='find')` (the shipped rule, `frozen`), or the range test on the frozen model and fastai's `fine_tune` body with
    a second range test after the unfreeze (`spread`, `range`, the rules that lost): its final validation loss and the rates it found"""
    from fastai.torch_core import set_seed
    learn = build(cfg, seed)
    set_seed(seed)
    epochs, lr_mult, found = int(cfg['recipe'][2:]), 100, []
    with learn.no_bar(), learn.no_logging():
        if rule == 'frozen':
            learn.fine_tune(epochs, base_lr='find')
            found.append(learn.recorder.suggested_lrs)
        else: # fastai's `fine_tune` (freeze_epochs=1, pct_start=0.3, div=5), with the second phase's rates from a second range test
            learn.freeze()
            res = learn.lr_find(show_plot=False)
            frozen = float(res[0]) if len(res) and not res.no_clear_valley else 2e-3
            found.append(res)
            learn.fit_one_cycle(1, slice(frozen), pct_start=0.99)
            learn.unfreeze()
            lrs = _second_test(learn, lr_mult, rule == 'range') or slice(frozen/2/lr_mult, frozen/2)
            found.append(learn.recorder.suggested_lrs)
            learn.fit_one_cycle(epochs, lrs, pct_start=0.3, div=5.0)
    hypers = [[float(h['lr']) for h in learn.opt.hypers]] # the unfrozen phase's last step
    found = [float(r[0]) if len(r) and not r.no_clear_valley else None for r in found]
    return dict(loss=final_valid_loss(learn), found=found, last_lrs=hypers[0])


def fastai_valley(cfg, seed) -> float:
    "fastai's valley rule on the frozen range test's curve (`lr_find()`'s defaults, the EMA curve fastai reads), as `suggestion_cv` reads it"
    from suggestion_cv import rebuild
    from lrfinder_cb.suggest import prepare_curve
    from lrfinder_cb.learner import fastai_finder
    rec = rebuild(range_test(cfg, seed))
    lrs, ema, _ = prepare_curve(rec.lrs, rec.smoothed_losses, rec.n_planned)
    return float(fastai_finder.valley(torch.tensor(lrs, dtype=torch.float32), torch.tensor(ema, dtype=torch.float32), rec.num_it)[0])


def run_one(job):
    "One configuration and seed, resumed from (and saved to) its cache file"
    name, seed, cache = job
    torch.set_num_threads(1)
    cfg = CONFIGS[name]
    path = Path(cache)/f"{name}__{seed}.json"
    entry = json.loads(path.read_text()) if path.exists() else dict(config=cfg, seed=seed, grid={}, methods={})
    save = lambda: path.write_text(json.dumps(entry))
    start = time.time()
    if cfg in DESIGN:
        for lr in GRID:
            key = f"{lr:.6e}"
            if key not in entry['grid']: entry['grid'][key] = train(cfg, seed, lr); save()
    m = entry['methods']
    if 'fastai default' not in m: m['fastai default'] = dict(loss=train(cfg, seed, 2e-3), lr=2e-3); save()
    if 'fastai valley' not in m:
        lr = fastai_valley(cfg, seed)
        m['fastai valley'] = dict(loss=train(cfg, seed, lr), lr=lr); save()
    for rule in RULES:
        if f"find: {rule}" not in m: m[f"find: {rule}"] = find_and_fine_tune(cfg, seed, rule); save()
    return name, seed, time.time() - start


# ---------- scoring ----------
class Run:
    "One configuration and seed: its grid (`fine_tune(base_lr=lr)` at each grid point) and each method's real loss"
    def __init__(self, entry, grid):
        self.config, self.seed, self.group = entry['config']['name'], entry['seed'], entry['config']['group']
        g = sorted((float(k), math.inf if v is None else v) for k, v in grid.items())
        self.glr, self.gloss = [x for x, _ in g], np.array([v for _, v in g])
        finite = self.gloss[np.isfinite(self.gloss)]
        self.best, self.worst_finite, self.best_lr = float(finite.min()), float(finite.max()), self.glr[int(np.argmin(self.gloss))]
        self.methods = {k: (math.inf if v['loss'] is None else v['loss']) for k, v in entry['methods'].items()}

    def score(self, loss): return float(np.mean(self.gloss < loss))
    def regret(self, loss): return 100*((loss if math.isfinite(loss) else self.worst_finite)/self.best - 1)
    def at_grid(self, lr): return float(self.gloss[self.glr.index(lr)])


def load(cache=CACHE):
    runs = []
    for p in sorted(Path(cache).glob('*.json')):
        e = json.loads(p.read_text())
        if e['config']['name'] not in CONFIGS or len(e['methods']) < 2 + len(RULES): continue
        grid = e['grid'] if e['config'] in DESIGN else json.loads((SUGGESTION_CACHE/p.name).read_text())['grid']
        if len(grid) == len(GRID): runs.append(Run(e, grid))
    return runs


def per_config(runs, losses, what='score'):
    out = {}
    for r, loss in zip(runs, losses): out.setdefault(r.config, []).append(getattr(r, what)(loss))
    return {c: float(np.mean(v)) for c, v in out.items()}


def noise_floor(runs):
    "Per configuration: the mean score, over runs, of the other seeds' best grid learning rates"
    by = {}
    for r in runs: by.setdefault(r.config, []).append(r)
    scores = {c: float(np.mean([np.mean([r.score(r.at_grid(o.best_lr)) for o in rs if o is not r]) for r in rs])) for c, rs in by.items()}
    regrets = {c: [float(np.mean([r.regret(r.at_grid(o.best_lr)) for o in rs if o is not r])) for r in rs] for c, rs in by.items()}
    return scores, regrets


HEADER = ("| method | median score | worst score | mean score | median regret | worst regret |\n"
          "|---|---:|---:|---:|---:|---:|")

def row(name, runs, losses):
    s = stats(per_config(runs, losses).values())
    regret = per_config(runs, losses, 'regret')
    return (f"| {name} | {s['median']:.2f} | {s['worst']:.2f} | {s['mean']:.2f} | "
            f"{statistics.median(r.regret(l) for r, l in zip(runs, losses)):.1f}% | {max(regret.values()):.0f}% |")

def floor_row(runs):
    scores, regrets = noise_floor(runs)
    s = stats(scores.values())
    return (f"| *noise floor: another seed's best grid LR* | {s['median']:.2f} | {s['worst']:.2f} | {s['mean']:.2f} | "
            f"{statistics.median(x for xs in regrets.values() for x in xs):.1f}% | {max(np.mean(x) for x in regrets.values()):.0f}% |")


def cross_validated_rule(runs):
    "Per left-out group, the rule chosen on the other groups; the losses of those choices; the rule chosen on every group"
    groups = sorted({r.group for r in runs})
    chosen, losses = {}, [None]*len(runs)
    pick = lambda rs: choose({rule: per_config(rs, [r.methods[f"find: {rule}"] for r in rs]).values() for rule in RULES})
    for g in groups:
        chosen[g] = pick([r for r in runs if r.group != g])
        for i, r in enumerate(runs):
            if r.group == g: losses[i] = r.methods[f"find: {chosen[g]}"]
    return chosen, losses, pick(runs)


METHODS = ['fastai default', 'fastai valley'] + [f"find: {rule}" for rule in RULES]

def report(runs, shipped):
    design = [r for r in runs if r.group != 'heldout_ft']
    held = [r for r in runs if r.group == 'heldout_ft']
    out = [f"## Design groups ({len({r.config for r in design})} configurations in {len({r.group for r in design})} groups, {len(design)} runs)\n",
           HEADER, floor_row(design)]
    out += [row(m, design, [r.methods[m] for r in design]) for m in METHODS]
    chosen, losses, everything = cross_validated_rule(design)
    out.append(row('find: the rule chosen on the other groups (out of group)', design, losses))
    out.append("\nRule chosen per left-out group: " + '; '.join(f"{g} {c}" for g, c in chosen.items()) + f"; **on all design groups: {everything}**"
               + f" (shipped: `{shipped}`, what `fine_tune(base_lr='find')` does)")
    if held:
        out += [f"\n## Held out ({len({r.config for r in held})} configurations, {len(held)} runs), run once with the rule frozen\n", HEADER, floor_row(held)]
        out += [row(m + (' **(shipped)**' if m == f"find: {shipped}" else ''), held, [r.methods[m] for r in held]) for m in METHODS]
        floor, _ = noise_floor(held)
        cols = {m: per_config(held, [r.methods[m] for r in held]) for m in METHODS}
        out += ["\nHeld out, per configuration (score, mean over seeds):\n", "| configuration | noise floor | " + " | ".join(METHODS) + " |",
                "|---|---:|" + "---:|"*len(METHODS)]
        out += [f"| {c} | {floor[c]:.2f} | " + " | ".join(f"{cols[m][c]:.2f}" for m in METHODS) + " |" for c in floor]
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--set', choices=('design', 'heldout'), help="run these configurations (resumes from the cache)")
    p.add_argument('--seeds', type=int, default=5)
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--cache', default=str(CACHE))
    p.add_argument('--report', action='store_true', help="print the tables from the cache")
    p.add_argument('--out', help="also write the tables to this markdown file")
    args = p.parse_args(argv)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if args.set:
        jobs = [(c['name'], s, str(cache)) for s in range(args.seeds) for c in (DESIGN if args.set == 'design' else HELD_OUT)]
        run_jobs(run_one, jobs, args.jobs, cache)
    if args.report or not args.set:
        text = report(load(cache), SHIPPED)
        print(text)
        if args.out: Path(args.out).write_text(text + "\n")


if __name__ == '__main__': sys.exit(main())
