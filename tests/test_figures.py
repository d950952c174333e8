"What a user sees of the plots and the long steps: figures read at 1:1, legends a plain savefig keeps, progress on every long step."
import base64, io, json, re, warnings
from pathlib import Path
import matplotlib.pyplot as plt
import pytest
from PIL import Image
from lrfinder_cb.core import LRFinderWarning
from helpers import demo_learner

ROOT = Path(__file__).resolve().parent.parent


def saved(fig, path) -> Image.Image:
    "The figure as a plain `fig.savefig(path)` writes it (no `bbox_inches`)"
    fig.savefig(path)
    return Image.open(path)


def legend_inside(fig) -> bool:
    fig.draw_without_rendering()
    legends = [a.get_legend() for a in fig.axes if a.get_legend() is not None]
    boxes = [l.get_window_extent() for l in legends]
    return bool(boxes) and all(b.x0 >= 0 and b.y0 >= 0 and b.x1 <= fig.bbox.width and b.y1 <= fig.bbox.height for b in boxes)


@pytest.fixture(scope='module')
def learn(): return demo_learner(0)


@pytest.mark.parametrize('kind', ['plain', 'n_runs', 'trial', 'probe'])
def test_saved_figure_keeps_its_legend(learn, kind, tmp_path):
    res = learn.lr_find(show_plot=False, n_runs=2 if kind == 'n_runs' else 1, valid_every=5 if kind == 'probe' else None)
    if kind == 'trial': learn.trial_lrs(res, n_steps=5)
    fig = learn.recorder.plot_lr_find()
    assert legend_inside(fig), f"{kind}: the legend lies outside the figure: a plain savefig cuts it"
    width, _ = saved(fig, tmp_path/'f.png').size
    assert 600 <= width <= 720, f"{kind}: {width} px wide; the docs column is about 680 px"
    assert min(t.get_fontsize() for t in fig.findobj(plt.Text) if t.get_text()) >= 8


def test_plot_without_a_range_test_says_so(learn):
    learn.fit(1, 1e-3)
    learn.recorder.lr_find_record = learn.recorder.suggested_lrs = None # as a learner that never ran one
    with pytest.warns(LRFinderWarning, match="no range test has run on this learner"): learn.recorder.plot_lr_find()
    learn.recorder.lrs = []
    with pytest.raises(ValueError, match="there is no range test to plot"): learn.recorder.plot_lr_find()


def test_every_run_and_trial_shows_progress(learn, capsys):
    res = learn.lr_find(show_plot=False, n_runs=2, num_it=20)
    out = capsys.readouterr().out
    assert 'run 1 of 2' in out and 'run 2 of 2' in out
    learn.trial_lrs(res, n_steps=3)
    out = capsys.readouterr().out
    for k in range(1, 5): assert f'trial {k} of 4' in out
    assert '4 trials done' in out
    with learn.no_bar(): learn.trial_lrs(res, n_steps=3)
    assert 'trial' not in capsys.readouterr().out


def test_notebooks_draw_at_full_size():
    "No notebook shrinks its figures or fonts, and every committed figure is at least 600 px wide"
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        cells = json.loads(nb.read_text())['cells']
        code = '\n'.join(''.join(c['source']) for c in cells if c['cell_type'] == 'code')
        for dpi in re.findall(r"(?:figure\.dpi'?\"?\s*[:=]\s*|set_dpi\(|dpi=)(\d+)", code): assert int(dpi) >= 100, f"{nb.name}: dpi {dpi}"
        for size in re.findall(r"fontsize=(\d+(?:\.\d+)?)", code): assert float(size) >= 8, f"{nb.name}: fontsize {size}"
        for c in cells:
            for out in c.get('outputs', []):
                png = out.get('data', {}).get('image/png')
                if png: assert Image.open(io.BytesIO(base64.b64decode(png))).size[0] >= 600, f"{nb.name}: a figure under 600 px wide"


def test_a_result_is_drawn_from_its_own_range_test(learn):
    "plot_lr_find(suggestions=res) draws res's own curve, not the last range test's: the markers and the curve are one run"
    res = learn.lr_find(show_plot=False, num_it=50, stop_div=False)
    learn.lr_find(show_plot=False, n_runs=2, num_it=60, stop_div=False)
    ax = learn.recorder.plot_lr_find(suggestions=res).axes[0]
    raw = [l for l in ax.lines if l.get_label() == 'raw loss'][0]
    assert list(raw.get_xdata()) == list(res.record.lrs)
    assert not [c for c in ax.collections if '10-90%' in str(c.get_label())], "no band of the later repeated runs"


def test_trials_without_a_range_test_say_so():
    with pytest.raises(ValueError, match=r"has run none: run res = learn.lr_find\(\) first"): demo_learner(0).trial_lrs()
