__version__ = "0.1.0"
# Written by hand (nbdev only updates the version line above). Importing the package imports the modules that patch fastai, as importing
# `fastai.callback.schedule` patches `Learner.lr_find`: `learner` (`Learner.lr_find`, our names in place of fastai's), `plot`
# (`Recorder.plot_lr_find`), `callback` (`Recorder._stateattrs`), `train` ('find' in `fit_one_cycle`/`fine_tune`), `experiments`
# (`Learner.lr_find_bs`), `trial` (`Learner.trial_lrs`). No other module patches (tests/test_structure.py), but importing one runs this file
# fastai's import makes torch warn that `torch.jit.script` is deprecated: nothing a user of ours can act on, so it is not shown.
import warnings as _warnings

with _warnings.catch_warnings():
    _warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)
    from . import learner, experiments, train, trial  # noqa: F401
