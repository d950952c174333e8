"The `lr-find` console script, end to end, as a user runs it."
import json, os, shutil, subprocess, sys, textwrap
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
    (tmp_path/'train.py').write_text(textwrap.dedent('''
        import torch
        from torch import nn
        from fastai.data.core import DataLoaders
        from fastai.data.load import DataLoader
        from fastai.learner import Learner
        def make_learner():
            torch.manual_seed(0)
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
    (['--demo', '--start-lr', '-1'], 'start_lr (-1.0) must be greater than 0'),
    (['--demo', '--num-it', '0'], 'num_it (0) must be a whole number'),
    (['--demo', '--suggest', 'best'], 'unknown rule best'),
])
def test_bad_input_is_one_line_not_a_traceback(tmp_path, args, message):
    (tmp_path/'train.py').write_text("def broken(): return 1/0\n")
    out = run(args, tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert 'Traceback' not in out.stderr
    assert [l for l in out.stderr.splitlines() if l.startswith('lr-find: error')], out.stderr


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
