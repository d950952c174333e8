"""Replay the stop rule on the range tests stored by suggestion_quality.py, offline: where would each sweep stop?

Usage: python benchmarks/stop_rule_replay.py [--median-of K ...]

Each stored record holds the raw losses of a sweep up to the point where it stopped. Feeding them, one by one, through a fresh
`LRFinderRecord` with the record's own settings reproduces its stop exactly (checked below: every stored sweep stops where it did).
A candidate rule that must also see the median of the last K raw losses above the divergence threshold (so that a short spike
cannot end a sweep) stops each sweep at the same point, or later; a sweep it does not stop within the stored losses would have run
on, by an amount only a re-run can measure. This is the check issue 15 asks of a new stop rule before it ships.
"""
import argparse, json
from pathlib import Path
import numpy as np
from lrfinder_cb.core import LRFinderRecord

RUNS = Path(__file__).parent/'results'/'suggestion_runs'


def stop_point(record:dict, median_of:int=0):
    "Points before the replayed sweep stops (`None` if it would not stop within the stored losses), and why"
    settings = {k: v for k, v in record['settings'].items() if k in LRFinderRecord.settings_names}
    rec = LRFinderRecord(**settings)
    for group_lrs, loss in zip(record['group_lrs'], record['losses']):
        reason = rec.add(group_lrs, loss)
        if reason == 'diverged' and median_of:
            threshold = rec.best_loss + (rec.div_factor-1)*max(rec.start_level - rec.best_loss, rec.noise)
            if np.median(rec.losses[-median_of:]) <= threshold: rec.stop_reason, reason = None, None # a candidate rule: not yet
        if reason: return rec.n_steps, reason
    return None, 'not stopped within the stored losses'


def main(candidates):
    files = sorted(RUNS.glob('*.json'))
    for k in [0, *candidates]:
        same = later = 0
        for f in files:
            record = json.loads(f.read_text())['record']
            n, _ = stop_point(record, k)
            if n == len(record['losses']): same += 1
            else: later += 1
        label = 'as shipped' if k == 0 else f'median of last {k} raw losses also above the threshold'
        print(f"{label}: {same} of {len(files)} sweeps stop where they did, {later} later (not within the stored losses)")


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--median-of', type=int, nargs='*', default=[5, 7, 9])
    main(parser.parse_args().median_of)
