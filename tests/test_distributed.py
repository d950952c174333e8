"""The range test under distributed data parallel: 2 CPU processes over gloo on 127.0.0.1, each with its own shard (issue 4).

Every run has a bounded timeout, so a hang fails (or, for fastai's finder, is observed) instead of blocking CI."""
import json, math, os, socket, subprocess, sys, time
from pathlib import Path
import pytest
import torch.distributed as dist

WORKER = Path(__file__).parent/'ddp_worker.py'
pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def run_ranks(scenario, finder, tmp_path, timeout=120, world=2):
    """Run `world` ranks; their results, or None if they did not all finish within `timeout` seconds (then they are killed).
    Ours gets one more try, on a fresh port, when the first never finishes: about one start in fifteen of `trial_ctx` on the oldest
    stack never got going (rerun, it passed 27 times in a row, in seconds each); a real deadlock hangs the second time too"""
    for _ in range(2 if finder == 'ours' else 1):
        res = _run_ranks_once(scenario, finder, tmp_path, timeout, world)
        if res is not None: return res
    return None


def _run_ranks_once(scenario, finder, tmp_path, timeout, world):
    env = {**os.environ, 'WORLD_SIZE': str(world), 'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(free_port()),
           'OMP_NUM_THREADS': '1', 'GLOO_SOCKET_IFNAME': 'lo',
           'ACCELERATE_USE_CPU': '1'}  # what `accelerate launch --cpu` sets, for `distrib_ctx`
    outs = [tmp_path/f'rank{r}.json' for r in range(world)]
    for o in outs: o.unlink(missing_ok=True)
    procs = [subprocess.Popen([sys.executable, str(WORKER), scenario, finder, str(out)], env={**env, 'RANK': str(r), 'LOCAL_RANK': str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r, out in enumerate(outs)]
    deadline = time.monotonic() + timeout
    try:
        for p in procs: p.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        for p in procs: p.kill()
        for p in procs: p.wait()
        return None
    results = [json.loads(o.read_text()) if o.exists() else dict(error=p.stdout.read()[-2000:]) for o, p in zip(outs, procs)]
    return results


def assert_one_curve(results):
    assert all('error' not in r for r in results), [r.get('error') for r in results]
    first = results[0]
    for r in results[1:]:
        assert r['losses'] == first['losses'] and r['lrs'] == first['lrs'], "ranks recorded different curves"
        assert r['suggestions'] == first['suggestions']
    assert all(r['restored'] for r in results)


def test_ranks_share_one_curve_and_suggestion(tmp_path):
    results = run_ranks('ddp', 'ours', tmp_path)
    assert results is not None, "the range test hung"
    assert_one_curve(results)
    assert all(r['world_size'] == 2 and r['effective_batch_size'] == 32 for r in results)
    assert len(results[0]['losses']) > 20


def test_one_rank_blowing_up_stops_all_together(tmp_path):
    results = run_ranks('blowup', 'ours', tmp_path)
    assert results is not None, "the range test hung"
    assert_one_curve(results)
    assert results[0]['stop_reason'] in ('diverged', 'non_finite') and len(results[0]['losses']) < 60


def test_held_learning_rates_and_validation_probe_agree_across_ranks(tmp_path):
    "steps_per_lr and the validation probe: one curve, one validation curve, one stop, on every rank"
    results = run_ranks('experiments', 'ours', tmp_path)
    assert results is not None, "the range test hung"
    assert_one_curve(results)
    assert results[0]['valid_losses'] and all(r['valid_losses'] == results[0]['valid_losses'] for r in results)
    assert len(results[0]['losses']) <= 30


def test_findlr_gives_every_rank_the_same_learning_rate(tmp_path):
    "The callback under DDP: one range test, one suggestion on every rank, the same peak in training, the same weights after"
    results = run_ranks('findlr', 'ours', tmp_path)
    assert results is not None, "the fit with FindLR hung"
    assert all('error' not in r for r in results), [r.get('error') for r in results]
    first = results[0]
    assert first['peak'] == first['found'][0] != 1e-5
    for r in results[1:]: assert (r['found'], r['peak'], r['weights']) == (first['found'], first['peak'], first['weights'])


@pytest.mark.parametrize('scenario', ['trial', 'trial_blowup', 'trial_ctx'])
def test_trials_agree_across_ranks(tmp_path, scenario):
    """Every rank scores the ranks' mean: the same losses and the same pick; a diverging trial stops on every rank at once (no hang);
    inside `distrib_ctx()` the trials are scored while the model is still wrapped"""
    if scenario == 'trial_ctx': pytest.importorskip('accelerate')
    results = run_ranks(scenario, 'ours', tmp_path)
    assert results is not None, "the trials hung"
    assert_one_curve(results)
    first = results[0]
    assert all(r['trial_losses'] == first['trial_losses'] and r['trial_lr'] == first['trial_lr'] for r in results)
    assert len(first['trial_lrs']) >= 3 and first['trial_lr'] in first['trial_lrs']
    if scenario == 'trial_blowup': # lr 1e30 diverges: stopped on both ranks together, and never picked
        assert first['trial_losses'][first['trial_lrs'].index(1e30)] == math.inf and first['trial_lr'] != 1e30


def test_distrib_ctx(tmp_path):
    pytest.importorskip('accelerate')
    results = run_ranks('distrib_ctx', 'ours', tmp_path)
    assert results is not None, "the range test hung"
    assert_one_curve(results)
    assert results[0]['world_size'] == 2 and len(results[0]['losses']) > 20


def fastai_falls_short(results):
    "Hung, or a rank failed, or a rank's weights were not restored, or the ranks disagree"
    if results is None or any('error' in r or not r['restored'] for r in results): return True
    return any(r['losses'] != results[0]['losses'] or r['suggestions'] != results[0]['suggestions'] for r in results)


@pytest.mark.parametrize('scenario', ['ddp', 'blowup'])
def test_fastai_finder_breaks_under_ddp(tmp_path, scenario):
    # Observed with fastai 2.8.7: rank 0 fails with "Connection closed by peer" and rank 1's weights are not restored,
    # in both scenarios (its collectives get out of step with the other rank's).
    assert fastai_falls_short(run_ranks(scenario, 'fastai', tmp_path, timeout=45))


def test_single_process_makes_no_collective_call(tmp_path, monkeypatch):
    import warnings
    from helpers import regression_learner, quiet
    def forbidden(*args, **kwargs): raise AssertionError("a collective call in a single process")
    monkeypatch.setattr(dist, 'all_reduce', forbidden)
    monkeypatch.setattr(dist, 'is_initialized', lambda: False)
    learn = regression_learner(tmp_path)
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        learn.lr_find(num_it=20, show_plot=False)
    assert learn.recorder.lr_find_record.world_size == 1 and learn.recorder.lr_find_record.n_recorded > 10
