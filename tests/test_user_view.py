"What a user sees: a notebook run headless, warnings that point at the user's line, files closed, type hints."
import inspect, os, subprocess, sys, textwrap
from pathlib import Path
import pytest

ROOT = Path(__file__).parent.parent


def _run_notebook(cells:list, tmp_path) -> list:
    "Run `cells` in a real Jupyter kernel (nbclient, as a user's notebook runs) and return each cell's outputs"
    nbformat = pytest.importorskip('nbformat'); nbclient = pytest.importorskip('nbclient')
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells])
    nbclient.NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': str(tmp_path)}}).execute()
    return [c.outputs for c in nb.cells]


def _texts(outputs) -> str:
    return '\n'.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/html', '')) + ''.join(o.get('data', {}).get('text/plain', ''))
                     for o in outputs)


def test_notebook_shows_one_sweep_bar_both_curves_and_fastais_figure(tmp_path):
    outputs = _run_notebook(['''
        %matplotlib inline
        import warnings; warnings.simplefilter('ignore')
        from lrfinder_cb.all import *
        from lrfinder_cb.cli import demo_learner
        learn = demo_learner()''', '''
        res = learn.lr_find(valid_every=5)''', '''
        print([l.get_label() for l in learn.recorder.plot_lr_find().axes[0].lines])''', '''
        fastai_finder.lr_find(learn)''', '''
        with learn.no_bar(): learn.lr_find(show_plot=False)'''], tmp_path)
    ours, labels, fastais, quiet = outputs[1], outputs[2], outputs[3], outputs[4]
    assert any('image/png' in o.get('data', {}) for o in ours), "lr_find shows its figure"
    bars = [o for o in ours if '<progress' in ''.join(o.get('data', {}).get('text/html', ''))]
    assert len(bars) == 1, f"one progress bar for the sweep, got {len(bars)}"
    text = _texts(bars)
    assert 'stopped: diverged at lr' in text and '/100' in text and 'Epoch' not in text
    assert 'validation loss (probe' in _texts(labels)
    assert any('image/png' in o.get('data', {}) for o in fastais), "fastai's own finder shows its figure"
    assert '<progress' not in _texts(quiet), "learn.no_bar() silences the sweep's bar"


def test_warnings_point_at_the_users_call(tmp_path):
    script = tmp_path/'user_script.py'
    script.write_text(textwrap.dedent('''
        import warnings
        from lrfinder_cb.cli import demo_learner
        learn = demo_learner()
        with learn.no_bar(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            learn.lr_find(num_it=3, show_plot=False)   # line 7
        print(sorted({(Path(w.filename).name, w.lineno) for w in caught if w.category.__name__ == 'LRFinderWarning'}))
    ''').replace('import warnings', 'import warnings\nfrom pathlib import Path', 1))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[('user_script.py', 8)]"


def test_a_range_test_leaves_no_file_open(tmp_path):
    code = ("from lrfinder_cb.cli import demo_learner\nlearn = demo_learner()\n"
            "with learn.no_bar(): learn.lr_find(num_it=30, show_plot=False, snapshot='auto')\n")
    out = subprocess.run([sys.executable, '-X', 'dev', '-W', 'error::ResourceWarning', '-c', code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300, env={**os.environ, 'MPLBACKEND': 'Agg'})
    assert out.returncode == 0 and 'ResourceWarning' not in out.stderr, out.stderr[-2000:]


def _public_callables():
    import lrfinder_cb.all as everything, lrfinder_cb.cli as cli
    from fastai.learner import Learner, Recorder
    found = [getattr(everything, n) for n in everything.__all__] + [Learner.lr_find, Learner.lr_find_bs, Recorder.plot_lr_find, cli.main,
                                                                    cli.demo_learner, cli.make_learner]
    for o in found:
        if inspect.isclass(o): yield from [o.__init__] + [m for n, m in vars(o).items() if inspect.isfunction(m) and not n.startswith('_')]
        elif callable(o): yield o


def test_every_public_parameter_has_a_type_hint():
    missing = []
    for f in _public_callables():
        try: params = inspect.signature(f).parameters
        except (TypeError, ValueError): continue
        missing += [f"{f.__qualname__}({n})" for n, p in params.items()
                    if p.annotation is inspect._empty and n not in ('self', 'cls') and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert not missing, missing
    assert (ROOT/'lrfinder_cb'/'py.typed').exists()


def test_steps_per_lr_warns_when_the_curve_would_be_short_and_the_record_says_both_counts():
    import warnings
    from lrfinder_cb.all import LRFinder, LRFinderWarning
    from lrfinder_cb.cli import demo_learner
    with pytest.warns(LRFinderWarning, match=r"num_it=100 with steps_per_lr=10 sweeps only 10 learning rates.*num_it=300"):
        LRFinder(steps_per_lr=10)
    with warnings.catch_warnings():
        warnings.simplefilter('error', LRFinderWarning)
        LRFinder(num_it=300, steps_per_lr=10) # as the README writes it: no warning
    learn = demo_learner()
    with learn.no_bar(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        learn.lr_find(num_it=300, steps_per_lr=10, stop_div=False, end_lr=1., show_plot=False)
    record = learn.recorder.lr_find_record
    assert (record.n_recorded, record.n_optimizer_steps) == (30, 300)
    assert repr(record).startswith('LRFinderRecord(30 learning rates, 300 optimizer steps, lr ')


def test_in_a_script_the_bar_ends_its_line(tmp_path):
    "The console bar of the sweep ends with a newline, so what the script prints next starts on a line of its own"
    code = ("from lrfinder_cb.cli import demo_learner\nlearn = demo_learner()\n"
            "learn.lr_find(num_it=30, show_plot=False)\nprint('after the range test')\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env={**os.environ, 'MPLBACKEND': 'Agg', 'PYTHONWARNINGS': 'ignore'})
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'stopped:' in out.stdout and 'after the range test' in out.stdout.splitlines()


def test_a_probe_of_only_non_finite_losses_does_not_break_the_plot():
    from fastai.learner import Recorder
    from lrfinder_cb.all import LRFinderRecord
    rec = LRFinderRecord(num_it=10, stop_div=False)
    for lr in (1e-3, 1e-2, 1e-1): rec.add([lr], 1.)
    rec.valid_lrs, rec.valid_losses = [1e-2], [float('nan')]
    recorder = Recorder(); recorder.lr_find_record = rec
    fig = recorder.plot_lr_find()
    assert not any(l.get_label().startswith('validation loss') for a in fig.axes for l in a.lines)
