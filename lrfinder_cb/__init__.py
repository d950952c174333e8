__version__ = "0.1.0"
# Written by hand (nbdev only updates the version line above): importing the package patches
# `Learner.lr_find`, `Learner.lr_find_bs` and `Recorder.plot_lr_find` with ours, whatever fastai modules are imported before or after,
# lets fastai's training calls take 'find' as their learning rate (`lrfinder_cb.train`), and adds `Learner.trial_lrs` (`lrfinder_cb.trial`).
# fastai's import makes torch warn that `torch.jit.script` is deprecated: nothing a user of ours can act on, so it is not shown.
# The one exception is the `lr-find` command, which answers --help and argument errors before fastai and torch are imported
# (seconds on a loaded machine): it calls `_patch()` itself once the arguments are good, before it loads the user's learner.
import os as _os, sys as _sys, warnings as _warnings

def _patch():
    "Import the modules that put our finder in fastai's place"
    with _warnings.catch_warnings():
        _warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)
        from . import learner, experiments, train, trial  # noqa: F401

if _os.path.basename((getattr(_sys, 'argv', None) or [''])[0]) != 'lr-find': _patch()
