"Shared fixtures: fastai's own `lr_find` and `plot_lr_find`, which `lrfinder_cb` keeps in `fastai_finder`, for side-by-side tests."
import os
os.environ.setdefault('MPLBACKEND', 'Agg')
import warnings
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
import pytest
import lrfinder_cb  # noqa: F401
from lrfinder_cb.learner import fastai_finder

assert fastai_finder.lr_find.__module__.startswith('fastai') and fastai_finder.plot_lr_find.__module__.startswith('fastai')


@pytest.fixture
def fastai_lr_find(): return fastai_finder.lr_find


@pytest.fixture
def fastai_plot_lr_find(): return fastai_finder.plot_lr_find


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close('all')
