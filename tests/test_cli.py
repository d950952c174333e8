"The `lr-find` console script, end to end, as a user runs it."
import json, os, re, shutil, subprocess, sys, textwrap
from pathlib import Path
import pytest

LR_FIND = shutil.which('lr-find', path=os.path.dirname(sys.executable)) or shutil.which('lr-find')


def run(args, cwd):
    return subprocess.run([LR_FIND, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_demo_prints_suggestions_and_saves_plot_and_json(tmp_path):
    out = run(['--demo', '--num-it', '60', '--suggest', 'valley,steep', '--out', 'lr.png', '--json', 'lr.json'], tmp_path)
    assert out.returncode == 0, out.stderr
    assert 'valley' in out.stdout and 'steep' in out.stdout
    assert (tmp_path/'lr.png').stat().st_size > 5000
    data = json.loads((tmp_path/'lr.json').read_text())
    lrs = data['record']['lrs']
    assert len(lrs) == len(data['record']['losses']) == len(data['record']['smoothed_losses']) <= 60
    assert set(data['suggestions']) == {'valley', 'steep'}
    for name, value in data['suggestions'].items():
        assert min(lrs) <= value <= max(lrs)
        assert data['points'][name][0] == value
    assert sorted(p.name for p in tmp_path.iterdir()) == ['lr.json', 'lr.png']


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_user_factory(tmp_path):
    "A user's factory, loaded from its file; its data order is seeded too (fastai's DataLoader draws it from `random`): an unseeded order"
    # gave a 40-step curve without a clear valley once in several CI runs (exit 3), where this test checks loading and flags, not verdicts
    (tmp_path/'train.py').write_text(textwrap.dedent('''
        import random, torch
        from torch import nn
        from fastai.data.core import DataLoaders
        from fastai.data.load import DataLoader
        from fastai.learner import Learner
        def make_learner():
            random.seed(0); torch.manual_seed(0)
            x = torch.randn(128, 2); y = (x[:, 0] > 0).long()
            ds = list(zip(x, y))
            return Learner(DataLoaders(DataLoader(ds, bs=16, shuffle=True), DataLoader(ds, bs=16)),
                           nn.Linear(2, 2), loss_func=nn.CrossEntropyLoss())
    '''))
    out = run(['train.py:make_learner', '--num-it', '40', '--json', 'r.json'], tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path/'r.json').read_text())['record']['settings']['num_it'] == 40


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
@pytest.mark.parametrize('args, message', [
    (['nope.py:f'], 'no such file: nope.py'),
    (['train.py'], 'must look like path/to/file.py:make_learner'),
    (['train.py:missing'], "has no function named 'missing'"),
    (['train.py:broken'], 'raised ZeroDivisionError'),
    (['--demo', '--start-lr', '-1'], "argument --start-lr: must be a number above 0 (got '-1')"),
    (['--demo', '--num-it', '0'], "argument --num-it: must be a whole number, 1 or more (got '0')"),
    (['--demo', '--runs', '0'], "argument --runs: must be a whole number, 1 or more (got '0')"),
    (['--demo', '--bs', '0'], "argument --bs: must be a whole number, 1 or more"),
    (['--demo', '--bs', '32,x'], "argument --bs: must be comma-separated whole numbers"),
    (['--demo', '--end-lr', '1e-9'], "--end-lr (1e-09) must be greater than --start-lr (1e-07)"),
    (['--demo', '--num-it', '10', '--steps-per-lr', '20'], "--steps-per-lr (20) must be at most --num-it (10)"),
    (['--demo', '--vary', 'init'], "--vary init compares runs from fresh initial weights: give --runs 2 or more"),
    (['--demo', '--suggest', 'best'], 'unknown rule best'),
    (['--demo', '--out', 'missing/lr.png'], '--out missing/lr.png: the folder missing does not exist'),
    (['--demo', '--out', 'lr.txt'], '--out lr.txt: cannot save as .txt; use .png'),
    (['--demo', '--json', 'lr.png'], '--json lr.png: cannot save as .png; use .json'),
    (['--demo', '--json', 'missing/r.json'], '--json missing/r.json: the folder missing does not exist'),
    (['train.py:number'], 'returned an int, not a fastai Learner'),
    (['--demo', '--save-model', 'm.pth'], '--save-model saves the trained model: give --train EPOCHS too'),
    (['--demo', '--train', '1', '--bs', '16,32'], '--train trains once, and --bs runs one range test per batch size: drop one of them'),
    (['--demo', '--train', '1', '--save-model', 'm.txt'], '--save-model m.txt: cannot save as .txt; use .pth, .pt'),
    (['--demo', '--train', '0'], "argument --train: must be a whole number, 1 or more (got '0')"),
    (['--demo', '--trial', '--bs', '16,32'], '--trial tries candidates around one suggestion, and --bs runs one range test per batch size'),
])
def test_bad_input_is_one_line_not_a_traceback(tmp_path, args, message):
    (tmp_path/'train.py').write_text("def broken(): return 1/0\ndef number(): return 3\n")
    out = run(args, tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert 'Traceback' not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith('lr-find: error'), out.stderr


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_demo_json_with_repeated_runs(tmp_path):
    "`--json` and `--runs 3` on whatever stack is installed (they crashed under fastcore 2)"
    out = run(['--demo', '--num-it', '50', '--runs', '3', '--json', 'r.json'], tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path/'r.json').read_text())
    assert data['record']['n_runs'] == 3 and data['record']['settings']['batch_size'] == 64
    assert 'between' in out.stdout and 'Warning' not in out.stderr


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_help_prints_no_third_party_warning(tmp_path):
    out = run(['--help'], tmp_path)
    assert out.returncode == 0 and 'usage: lr-find' in out.stdout and out.stderr == ''


def test_the_package_patches_on_import_without_looking_at_the_program():
    "No `sys.argv` check: `import lrfinder_cb` patches fastai whatever the program, and the CLI runs no patching step of its own"
    import lrfinder_cb
    assert 'sys.argv' not in Path(lrfinder_cb.__file__).read_text() and not hasattr(lrfinder_cb, '_patch')
    code = ("import sys; sys.argv = ['lr-find']\nimport lrfinder_cb\nfrom fastai.learner import Learner\n"
            "print(Learner.lr_find.__module__)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == 'lrfinder_cb.learner', out.stderr


def test_cli_program_still_patches_fastai_before_loading_the_learner(tmp_path):
    "The command puts our finder in place before it loads the user's learner file"
    (tmp_path/'train.py').write_text(textwrap.dedent('''
        from fastai.callback.schedule import LRFinder
        from lrfinder_cb.cli import demo_learner
        import lrfinder_cb.callback
        def make_learner():
            assert LRFinder is lrfinder_cb.callback.LRFinder, "fastai's LRFinder is still in place"
            return demo_learner()
    '''))
    out = run(['train.py:make_learner', '--num-it', '60'], tmp_path)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_a_learner_that_fails_during_the_sweep_is_one_line_with_a_hint(tmp_path):
    (tmp_path/'train.py').write_text(textwrap.dedent('''
        from torch import nn
        from lrfinder_cb.cli import demo_learner
        def make_learner():
            learn = demo_learner()
            learn.model = nn.Linear(32, 10) # the digits have 64 features
            return learn
    '''))
    out = run(['train.py:make_learner'], tmp_path)
    assert out.returncode == 1 and 'Traceback' not in out.stderr
    first, hint = out.stderr.strip().splitlines()
    assert first.startswith('lr-find: error: train.py:make_learner failed at step 1 of the range test: RuntimeError: mat1 and mat2')
    assert hint == '(rerun with --traceback for the full traceback)'
    full = run(['train.py:make_learner', '--traceback'], tmp_path)
    assert full.returncode == 1 and 'Traceback' in full.stderr


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_python_warnings_are_notes_in_the_flags_typed(tmp_path):
    out = run(['--demo', '--num-it', '3'], tmp_path)
    assert out.returncode == 3, out.stderr  # three points show no clear valley: no number to use
    assert '  note: --num-it (3) is below 6' in out.stdout and 'Warning' not in out.stderr


def test_plot_formats_are_ones_matplotlib_saves():
    import matplotlib.pyplot as plt
    from lrfinder_cb.cli import plot_formats
    fig = plt.figure()
    assert set(plot_formats) <= set(fig.canvas.get_supported_filetypes())


def test_cli_rule_names_are_the_package_rules():
    from lrfinder_cb.cli import rule_names
    from lrfinder_cb.suggest import known_rules
    assert set(rule_names) == set(known_rules)


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_points_and_optimizer_steps_are_named_apart(tmp_path):
    import re
    out = run(['--demo', '--num-it', '90', '--steps-per-lr', '3', '--no-stop-div', '--json', 'r.json'], tmp_path)
    assert out.returncode == 0, out.stderr
    points, steps = map(int, re.search(r"lr-find: (\d+) learning rates, (\d+) optimizer steps", out.stdout).groups())
    assert (points, steps) == (30, 90)
    record = json.loads((tmp_path/'r.json').read_text())['record']
    assert (record['n_recorded'], record['n_optimizer_steps']) == (30, 90) and len(record['lrs']) == 30
    plain = run(['--demo', '--num-it', '40', '--no-stop-div'], tmp_path)
    assert 'lr-find: 40 steps from' in plain.stdout


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
@pytest.mark.parametrize('case', ['rising', 'nan'])
def test_no_number_and_exit_3_when_the_curve_shows_no_valley(tmp_path, case):
    "SGD on unscaled inputs from too high a start_lr (the loss rises from the first step), or a loss NaN from the first step"
    (tmp_path/'train.py').write_text(textwrap.dedent('''
        from torch import nn
        from fastai.optimizer import SGD
        from lrfinder_cb.cli import demo_learner
        class Unscaled(nn.Module):
            def forward(self, x): return x*300
        def rising():
            learn = demo_learner()
            learn.model, learn.opt_func = nn.Sequential(Unscaled(), learn.model), SGD
            return learn
        def nan():
            learn = demo_learner()
            learn.loss_func = lambda out, y: out.sum()*float('nan')
            return learn
    '''))
    out = run([f'train.py:{case}', '--start-lr', '0.1', '--end-lr', '1e4', '--json', 'r.json'], tmp_path)
    assert out.returncode == 3, out.stderr
    assert out.stderr.startswith('lr-find: no suggestion: ') and 'Traceback' not in out.stderr
    data = json.loads((tmp_path/'r.json').read_text())
    assert data['no_clear_valley'] and data['range'] is None and data['regions'] is None
    if case == 'rising': assert 'never fell' in out.stdout and '--start-lr may be too high' in out.stdout
    else: assert 'between  none: no finite loss was recorded' in out.stdout


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_cli_reports_the_probe_and_names_its_curves(tmp_path):
    "With --valid-every the CLI says where the probe bottoms; the JSON names the lag-free curve, its band, and fastai's EMA"
    out = run(['--demo', '--num-it', '60', '--runs', '2', '--valid-every', '5', '--json', 'r.json'], tmp_path)
    assert out.returncode == 0, out.stderr
    line = [l for l in out.stdout.splitlines() if l.strip().startswith('validation probe:')]
    assert len(line) == 1 and 'lowest validation loss' in line[0] and 'training loss, smoothed: lowest at lr' in line[0]
    curves = json.loads((tmp_path/'r.json').read_text())['curves']
    assert set(curves) == {'lag_free', 'ema'}
    lag_free = curves['lag_free']
    assert len(lag_free['lrs']) == len(lag_free['losses']) == len(lag_free['band_low']) == len(lag_free['band_high'])
    assert all(lo <= y <= hi for lo, y, hi in zip(lag_free['band_low'], lag_free['losses'], lag_free['band_high']) if lo is not None)


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_train_flag_trains_as_fit_one_cycle_find_and_saves_the_model(tmp_path):
    "`--train 2` is `fit_one_cycle(2, lr_max='find')`: the same learning rate, and the same weights up to the thread count's rounding"
    import textwrap, torch, warnings
    from lrfinder_cb.cli import demo_learner
    out = run(['--demo', '--train', '2', '--save-model', 'm.pth', '--json', 'r.json'], tmp_path)
    assert out.returncode == 0, out.stderr
    learn = demo_learner(0)
    with learn.no_bar(), learn.no_logging(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        learn.fit_one_cycle(2, lr_max='find')
    lr = learn.recorder.suggested_lrs.between
    assert f"lr-find: training 2 epochs of fit_one_cycle at lr_max={lr:.3g} (between)" in out.stdout
    assert 'the trained model saved to m.pth' in out.stdout
    block = re.search(r"load it into the same learner with:\n((?:    .*\n)+)", out.stdout).group(1)
    fresh = demo_learner(1)
    with warnings.catch_warnings():
        warnings.filterwarnings('error', message='Could not load the optimizer state') # fastai's, when there is no optimizer
        exec(textwrap.dedent(block), {'learn': fresh}) # the lines it prints, as printed (their import too), on a fresh learner
    for k, v in learn.model.state_dict().items(): torch.testing.assert_close(fresh.model.state_dict()[k], v, rtol=1e-5, atol=1e-6)
    train = json.loads((tmp_path/'r.json').read_text())['train']
    assert (train['lr_max'], train['epochs']) == (lr, 2)
    assert train['final']['valid_loss'] == pytest.approx(float(learn.recorder.values[-1][1]), rel=1e-4)
    saved = torch.load(tmp_path/'m.pth', weights_only=False)
    for k, v in learn.model.state_dict().items(): torch.testing.assert_close(saved['model'][k], v, rtol=1e-5, atol=1e-6)
    assert 'opt' in saved, "the optimizer too, as learn.save writes it"


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_train_flag_without_a_clear_valley_does_not_train_and_exits_3(tmp_path):
    "Issue 28: no valley, no number, so no training at a rate nobody chose; the reason is printed once (the note), not twice"
    out = run(['--demo', '--num-it', '3', '--train', '1', '--json', 'r.json'], tmp_path)
    assert out.returncode == 3, out.stderr
    assert 'lr-find: training' not in out.stdout and 'lr-find: not training: there is no learning rate to train at' in out.stderr
    assert out.stderr.startswith('lr-find: no suggestion: the curve shows no clear valley (the note above says why)')
    assert 'train' not in json.loads((tmp_path/'r.json').read_text())
    assert sum('no clear valley:' in line for line in (out.stdout + out.stderr).splitlines()) == 1


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_a_learner_that_fails_in_training_is_one_line_with_a_hint(tmp_path):
    (tmp_path/'train.py').write_text(textwrap.dedent('''
        from fastai.callback.core import Callback
        from lrfinder_cb.cli import demo_learner
        class Boom(Callback):
            def after_epoch(self):
                if not hasattr(self.learn, 'lr_finder'): raise RuntimeError('boom after the first epoch')
        def make_learner(): return demo_learner().add_cb(Boom())
    '''))
    out = run(['train.py:make_learner', '--train', '2'], tmp_path)
    assert out.returncode == 1 and 'Traceback' not in out.stderr, out.stderr
    first, hint = out.stderr.strip().splitlines()
    assert first.startswith('lr-find: error: train.py:make_learner failed in epoch 1 of training: RuntimeError: ')
    assert first.endswith('boom after the first epoch'), "fastai's wrapper line is not all it says"
    assert hint == '(rerun with --traceback for the full traceback)'


@pytest.mark.skipif(LR_FIND is None, reason="the package is not installed (pip install -e .)")
def test_trial_flag_prints_the_trials_saves_them_and_trains_at_their_pick(tmp_path):
    "`--trial` is `learn.trial_lrs(res)`: the same trials as the Python call, printed, in the JSON and the plot; `--train` trains at the pick"
    import warnings
    from lrfinder_cb.cli import demo_learner
    out = run(['--demo', '--trial', '--train', '1', '--json', 'r.json', '--out', 'lr.png'], tmp_path)
    assert out.returncode == 0, out.stderr
    learn = demo_learner(0)
    with learn.no_bar(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = learn.lr_find(show_plot=False)
        learn.trial_lrs(res)
    data = json.loads((tmp_path/'r.json').read_text())
    assert data['trial']['lrs'] == res.trial.lrs and data['trial']['lr'] == res.trial.lr
    assert data['trial']['losses'] == pytest.approx(res.trial.losses, rel=1e-4)
    assert res.trial.verdict in out.stdout and 'trials (one_cycle, 50 steps each' in out.stdout
    assert f"lr-find: training 1 epoch of fit_one_cycle at lr_max={res.trial.lr:.3g} (the trials)" in out.stdout
    assert data['train']['lr_max'] == res.trial.lr
    assert (tmp_path/'lr.png').stat().st_size > 5000
