__version__ = "0.1.0"
# Written by hand (nbdev only updates the version line above): importing the package patches
# `Learner.lr_find`, `Learner.lr_find_bs` and `Recorder.plot_lr_find` with ours, whatever fastai modules are imported before or after.
# fastai's import makes torch warn that `torch.jit.script` is deprecated: nothing a user of ours can act on, so it is not shown.
import warnings as _warnings
with _warnings.catch_warnings():
    _warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)
    from . import learner as _learner, experiments as _experiments  # noqa: F401
