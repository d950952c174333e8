"Capture fastai's own `lr_find` and `plot_lr_find` before `lrfinder_cb` replaces them, for side-by-side tests."
import os
os.environ.setdefault('MPLBACKEND', 'Agg')
import warnings
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
import pytest
import fastai.callback.schedule  # noqa: F401  (defines fastai's patches)
from fastai.learner import Learner, Recorder

FASTAI_LR_FIND = Learner.lr_find
FASTAI_PLOT_LR_FIND = Recorder.plot_lr_find
assert FASTAI_LR_FIND.__module__.startswith('fastai'), "lrfinder_cb was imported before conftest captured fastai's lr_find"

import lrfinder_cb  # noqa: E402,F401


@pytest.fixture
def fastai_lr_find(): return FASTAI_LR_FIND


@pytest.fixture
def fastai_plot_lr_find(): return FASTAI_PLOT_LR_FIND


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close('all')
