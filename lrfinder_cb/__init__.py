__version__ = "0.1.0"
# Written by hand (nbdev only updates the version line above). Importing the package imports the modules that patch fastai, as importing
# `fastai.callback.schedule` patches `Learner.lr_find`: `learner` (our `Learner.lr_find`, and our names in place of fastai's),
# `plot` (`Recorder.plot_lr_find`), `train` ('find' in `fit_one_cycle`/`fine_tune`), `experiments` (`Learner.lr_find_bs`) and
# `trial` (`Learner.trial_lrs`). The other modules patch nothing.
# fastai's import makes torch warn that `torch.jit.script` is deprecated: nothing a user of ours can act on, so it is not shown.
import warnings as _warnings

with _warnings.catch_warnings():
    _warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)
    from . import learner, experiments, train, trial  # noqa: F401
