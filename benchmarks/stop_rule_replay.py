"""Replay stop rules on the suggestion benchmark's range tests, offline: where does each sweep stop? (issue 15)

    python benchmarks/stop_rule_replay.py            # the shipped rule against the previous one, design and held-out groups apart
    python benchmarks/stop_rule_replay.py --apply    # rewrite the cached records the shipped rule changes (then re-run suggestion_cv.py --train)
    python benchmarks/stop_rule_replay.py --choose   # how `persist` was chosen: synthetic spikes, and the design groups only

`suggestion_quality.py --full-sweeps` stored, for every configuration and seed, the range tests of the benchmark run to the end
(`stop_div=False`: `sweeps.record`, and the three runs of `sweeps.record3`). A stop rule only reads the points before it stops, and the
training up to a point does not depend on the rule, so feeding a full sweep point by point through a fresh `LRFinderRecord` gives
exactly the record a range test with that rule would have made (the previous rule, replayed this way, reproduces every stored record
bit for bit: checked in `tests/test_benchmark_claims.py`).

A sweep the shipped rule stops later than the previous one is either a real divergence (after the previous stop the raw losses stayed
above its divergence bar: the median of the next 7 is above it, or a loss is not finite), where the lag is what the new rule costs; or
a spike the loss came back from, where sweeping on is the point of the rule.
"""
import argparse, json, math, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))
from lrfinder_cb.core import LRFinderRecord, StopRule, noise_level
from suggestion_quality import CACHE, HELD_OUT_GROUPS, BY_NAME

RUNS = CACHE


class Issue15Rule:
    "The stop rule of issue 15 (shipped until issue 28): the smoothed loss above its best by `div-1` times the scale, and before a clear fall the median of 7 too"
    min_grace = 5       # no point is judged before a tenth of the sweep, nor before this many: the first debiased averages are too noisy
    clear_fall = 3.     # the curve has clearly fallen once its settled best is this many raw-noise sd below its start
    min_persist = 7     # before a clear fall, the median of the last `persist` raw losses must have risen too: 7 ignores a 3-point spike
    persist = None      # that window: `max(min_persist, n_planned//15)` unless set (chosen in benchmarks/stop_rule_replay.py)
    in_a_row = 2        # ... at this many points in a row
    z = 3.              # ... and by this many standard deviations of that median more than the bar
    median_sd = 1.2533  # sqrt(pi/2): the median of k normal draws has this times their sd/sqrt(k) as its own sd
    rounding = 1e-9     # relative floor on the scale: an average of equal losses wobbles in its last digits
    noise_points = (5, 1000) # the raw noise is read on at most the last 1000 points before the window judged, if 5 or more are there

    def __init__(self, div:float=4.): # Diverged: risen above its best by more than `div-1` times the curve's scale
        self.div,self.start,self.noise,self.best,self.settled_best,self.held = div,None,0.,math.inf,math.inf,0

    def __call__(self, record) -> bool:
        "Judge the newest point of `record`: has its smoothed loss risen above its best by more than `div-1` times the scale, for real?"
        n,smoothed,losses = record.n_recorded,record.smoothed_losses[-1],record.losses
        grace,persist = max(self.min_grace, record.n_planned//10),self.persist or max(self.min_persist, record.n_planned//15)
        self.best = min(self.best, smoothed)
        if n == grace: self.start,self.noise = smoothed,float(np.std(losses))
        if n >= grace: self.settled_best = min(self.settled_best, smoothed) # the best once the average has settled
        if self.start is None: return False
        scale = max(self.start - self.best, self.noise, self.rounding*max(abs(self.best), abs(self.start)))
        if smoothed - self.best <= (self.div-1)*scale:
            self.held = 0
            return False
        fewest,most = self.noise_points
        before = losses[-most:-persist] # the raw losses' noise before the points judged if it can (a blow-up's steps are not noise)
        noise = noise_level(before if len(before) >= fewest else losses)
        if self.start - self.settled_best > self.clear_fall*noise: return True # after a clear fall: a rise of 3 times the fall
        recent = float(np.median(losses[-persist:]))
        held = recent - self.settled_best > (self.div-1)*max(scale, noise) + self.z*self.median_sd*noise/math.sqrt(persist)
        self.held = self.held + 1 if held else 0
        return self.held >= self.in_a_row

    def bar(self) -> float: return self.best + (self.div-1)*max(self.start - self.best, self.noise)


class FirstRule(Issue15Rule):
    "The stop rule before issue 15: the smoothed loss alone, above its best by `div-1` times the curve's scale"
    def __call__(self, rec) -> bool:
        n,smoothed = rec.n_recorded,rec.smoothed_losses[-1]
        self.best = min(self.best, smoothed)
        if n == max(self.min_grace, rec.n_planned//10): self.start,self.noise = smoothed,float(np.std(rec.losses))
        return self.start is not None and smoothed - self.best > (self.div-1)*max(self.start - self.best, self.noise)


PreviousRule = Issue15Rule # the rule the shipped one replaced


def replay(settings:dict, sweep:dict, rule=StopRule, persist:int|None=None) -> LRFinderRecord:
    "The record a range test with stop rule `rule` makes of the full sweep `sweep` (its raw losses and learning rates)"
    if persist: rule = type(rule.__name__, (rule,), dict(persist=persist))
    rec = type('Replayed', (LRFinderRecord,), dict(stop_rule=rule))(
        **{k: v for k, v in settings.items() if k in LRFinderRecord.settings_names})
    for group_lrs, loss in zip(sweep['group_lrs'], sweep['losses']):
        if rec.add(group_lrs, loss): break
    return rec


def stop_point(record:dict, rule=StopRule):
    "Points before a fresh record fed the stored losses of `record` stops (`None` if it does not stop within them), and why"
    rec = replay(record['settings'], record, rule)
    return (rec.n_recorded, rec.stop_reason) if rec.stop_reason else (None, 'not stopped within the stored losses')


def median_record(settings:dict, sweeps:list, rule=StopRule) -> LRFinderRecord:
    "The median record of `lr_find(n_runs=...)` from its runs' full sweeps"
    return LRFinderRecord.median_of([replay(settings, s, rule) for s in sweeps])


def compare(settings:dict, sweep:dict, persist:int|None=None, rule=StopRule, old_rule=PreviousRule):
    "(previous stop, shipped stop, 'real divergence' or 'recovered' when they differ)"
    old,new = replay(settings, sweep, old_rule),replay(settings, sweep, rule, persist)
    if new.n_recorded == old.n_recorded: return old.n_recorded, new.n_recorded, None
    after = np.array(sweep['losses'][old.n_recorded:old.n_recorded + 7])
    recovered = len(after) > 0 and np.isfinite(after).all() and np.median(after) <= old.rule.bar()
    return old.n_recorded, new.n_recorded, 'recovered' if recovered else 'real divergence'


def group_of(entry) -> str: return 'held-out' if BY_NAME[entry['config']['name']]['group'] in HELD_OUT_GROUPS else 'design'


def summary(files, persist:int|None=None, groups=('design', 'held-out'), rule=StopRule, old_rule=PreviousRule) -> dict:
    "Per group: sweeps, earlier, the same, later (lags of real divergences, count of recoveries)"
    out = {}
    for f in files:
        entry = json.loads(f.read_text())
        if group_of(entry) not in groups: continue
        o = out.setdefault(group_of(entry), dict(sweeps=0, earlier=0, same=0, lags=[], recovered=0))
        for sweep in entry['sweeps']['record'] + entry['sweeps']['record3']:
            old, new, kind = compare(entry['record']['settings'], sweep, persist, rule, old_rule)
            o['sweeps'] += 1
            if new < old: o['earlier'] += 1
            elif kind is None: o['same'] += 1
            elif kind == 'recovered': o['recovered'] += 1
            else: o['lags'].append(new - old)
    return out


def apply(files) -> int:
    "Rewrite `record` and `record3` of every cached run whose records the shipped rule changes; return how many files changed"
    changed = 0
    for f in files:
        entry = json.loads(f.read_text())
        settings = entry['record']['settings']
        new = replay(settings, entry['sweeps']['record'][0]).as_dict()
        new3 = median_record(settings, entry['sweeps']['record3']).as_dict()
        same = lambda a, b: all(a[k] == b[k] for k in ('losses', 'smoothed_losses', 'stop_reason'))
        if same(new, entry['record']) and same(new3, entry['record3']): continue
        entry['record'],entry['record3'] = new,new3
        f.write_text(json.dumps(entry)); changed += 1
    return changed


def synthetic_false_stops(persist:int|None, trials:int=300, height:float=4., rule=Issue15Rule, split:bool=False) -> tuple:
    """Spikes of 1, 2 and 3 points, `height` times the loss, early on `trials` synthetic curves (noise, offsets, scales): sweeps stopped
    before the spike-free one, of all; with `split`, (stopped, spikes) before the fall and during it (once 5% of it is done)"""
    from lrfinder_cb.suggest import synthetic_curve
    rng,counts = np.random.default_rng(0),np.zeros((2, 2), int)
    for trial in range(trials):
        steep,noise = 10**rng.uniform(-4, -1.5),rng.choice([0.01, 0.05, 0.15])
        offset,scale = rng.choice([0, -3, 10]),rng.choice([1, 0.01, 100])
        lrs, base = synthetic_curve(100, noise=noise, seed=trial, steepest=steep)
        smooth = synthetic_curve(100, steepest=steep)[1]
        sweep = lambda losses: dict(losses=list((losses + offset)*scale), group_lrs=[[lr] for lr in lrs])
        settings = dict(num_it=100)
        clean = replay(settings, sweep(base), FirstRule).n_recorded
        for length in (1, 2, 3):
            spiked,at = base.copy(),rng.integers(8, 30)
            spiked[at:at + length] = base[at:at + length]*height
            during = smooth[0] - smooth[at] > 0.05*(smooth[0] - smooth.min())
            counts[int(during)] += (replay(settings, sweep(spiked), rule, persist=persist).n_recorded < clean - 2, 1)
    return tuple(counts.ravel()) if split else (int(counts[:, 0].sum()), int(counts[:, 1].sum()))


def spike_family(rule=StopRule, trials:int=2000, seed:int=1) -> tuple:
    """Issue 28's family: synthetic curves of 60-200 points (noise 0.5-6% of the start, offsets, scales over 6 decades), each with one
    spike of 1-10 points at 2-20 times the loss, anywhere before the fall (the noise-free curve has done less than 1% of it): (sweeps that
    stop before 90% of the spike-free sweep's points, spiked configurations)"""
    from lrfinder_cb.suggest import synthetic_curve
    rng,early,n_configs = np.random.default_rng(seed),0,0
    for trial in range(trials):
        n,steep,noise = int(rng.integers(60, 201)),10**rng.uniform(-5, -1.5),rng.uniform(0.005, 0.15)
        offset,scale = rng.choice([0, -3, 10, 100]),10**rng.uniform(-3, 3)
        lrs,base = synthetic_curve(n, steepest=steep)
        clean = base + noise*rng.standard_normal(n)
        before_fall = int(np.searchsorted(np.log10(lrs/steep), -2)) # 0.7% of the fall done
        length,height = int(rng.integers(1, 11)),rng.uniform(2, 20)
        if before_fall - length < 1: continue
        at = int(rng.integers(0, before_fall - length))
        spiked = clean.copy()
        spiked[at:at + length] = (clean if rng.random() < 0.5 else base)[at:at + length]*height # with or without its noise
        sweep = lambda losses: dict(losses=list((losses + offset)*scale), group_lrs=[[lr] for lr in lrs])
        plain,wild = replay(dict(num_it=n), sweep(clean), rule),replay(dict(num_it=n), sweep(spiked), rule)
        n_configs += 1
        early += wild.n_recorded < 0.9*plain.n_recorded
    return early, n_configs


def choose(files):
    "The table `persist` was chosen from: synthetic spikes, and the design groups (no held-out run is read)"
    print("| persist | synthetic: early 1-3 point spikes that still stop the sweep | design: real divergences stopped later | their lag, points: "
          "median / 90% / max | spikes swept on |\n|---:|---:|---:|---|---:|")
    bad, n = synthetic_false_stops(None, rule=FirstRule)
    print(f"| previous rule | {bad} of {n} | | | |")
    for k in (5, 7, 9):
        bad, n = synthetic_false_stops(k)
        o = summary(files, k, groups=('design',), rule=Issue15Rule, old_rule=FirstRule)['design']
        lags = np.array(o['lags'] or [0])
        print(f"| {k} | {bad} of {n} | {len(o['lags'])} of {o['sweeps']} | {np.median(lags):g} / {np.percentile(lags, 90):g} / {lags.max()} | {o['recovered']} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--apply', action='store_true', help="rewrite the cached records the shipped rule changes")
    p.add_argument('--choose', action='store_true', help="the table persist was chosen from (synthetic curves, design groups)")
    p.add_argument('--spikes', action='store_true', help="issue 28's synthetic spikes: early stops of the previous and the shipped rule")
    args = p.parse_args(argv)
    files = sorted(RUNS.glob('*.json'))
    if args.choose: return choose(files)
    if args.spikes:
        for name, rule in (('issue 15', Issue15Rule), ('shipped', StopRule)): print(name, "stops early on %d of %d spiked curves" % spike_family(rule))
        return
    print("| groups | sweeps | stop earlier | stop where they did | real divergences stopped later | their lag, points: median / 90% / max "
          "| spikes the loss came back from, swept on |\n|---|---:|---:|---:|---:|---|---:|")
    for group, o in sorted(summary(files).items()):
        lags = np.array(o['lags'] or [0])
        print(f"| {group} | {o['sweeps']} | {o['earlier']} | {o['same']} | {len(o['lags'])} | {np.median(lags):g} / {np.percentile(lags, 90):g} / "
              f"{lags.max()} | {o['recovered']} |")
    if args.apply: print(f"rewrote the records of {apply(files)} of {len(files)} cached runs")


if __name__ == '__main__': main()
