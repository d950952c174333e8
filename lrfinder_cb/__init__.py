__version__ = "0.1.0"
# Written by hand (nbdev only updates the version line above): importing the package patches
# `Learner.lr_find` and `Recorder.plot_lr_find` with ours, whatever fastai modules are imported before or after.
from . import learner as _learner  # noqa: F401
