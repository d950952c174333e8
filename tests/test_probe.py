"""The validation probe is a validation (issue 15): it runs the learner's own events and callbacks, so on fixed batches it computes what
`learn.validate()` computes, for models whose output a callback reshapes (AWD_LSTM's `RNNCallback`, a dict output) and under MixUp, whose loss
function is swapped during training; and it leaves no trace on training."""
import warnings
import numpy as np
import pytest
import torch
from torch import nn
from fastai.callback.core import Callback
from fastai.callback.mixup import MixUp
from fastai.callback.rnn import ModelResetter, RNNCallback, RNNRegularizer
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.text.data import LMDataLoader
from fastai.text.models.awdlstm import AWD_LSTM, awd_lstm_lm_config
from fastai.text.models.core import get_language_model
from fastai.torch_core import set_seed
from lrfinder_cb.all import LRFinderWarning
from helpers import demo_learner, weights, assert_same_weights, quiet

# A sweep whose learning rates are far too small to move float32 weights: every probe sees the starting weights.
FROZEN = dict(start_lr=1e-30, end_lr=2e-30, num_it=12, valid_every=4, stop_div=False)


def find(learn, **kwargs):
    with quiet(learn), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        return learn.lr_find(show_plot=False, **kwargs)


def validate(learn):
    with quiet(learn): return learn.validate()[0]


def text_learner(path, seed=0, vocab=40, n_docs=24, bs=4, seq_len=12):
    "fastai's AWD_LSTM language model with the callbacks `language_model_learner` adds, on random token streams"
    set_seed(seed)
    docs = [torch.randint(0, vocab, (int(torch.randint(30, 60, ()).item()),)) for _ in range(n_docs)]
    train = LMDataLoader(docs[:16], bs=bs, seq_len=seq_len, shuffle=True)
    valid = LMDataLoader(docs[16:], bs=bs, seq_len=seq_len)
    config = {**awd_lstm_lm_config, 'emb_sz': 16, 'n_hid': 24, 'n_layers': 2}
    model = get_language_model(AWD_LSTM, vocab, config=config)
    return Learner(DataLoaders(train, valid), model, loss_func=CrossEntropyLossFlat(), path=path,
                   cbs=[ModelResetter(), RNNCallback(), RNNRegularizer(alpha=2., beta=1.)])


class DictModel(nn.Module):
    def __init__(self): super().__init__(); self.body = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    def forward(self, x): return dict(logits=self.body(x), features=x)


class Unpack(Callback):
    "Take the logits out of a dict output, as a user's callback would"
    def after_pred(self): self.learn.pred = self.pred['logits']


def dict_learner(path, seed=0):
    learn = demo_learner(seed, path=path)
    set_seed(seed)
    learn.model = DictModel()
    learn.add_cb(Unpack())
    return learn


def mixup_learner(path, seed=0):
    learn = demo_learner(seed, path=path)
    learn.loss_func = CrossEntropyLossFlat() # MixUp mixes the losses of integer targets (`y_int`), as with fastai's vision learners
    learn.add_cb(MixUp())
    return learn


def whole_valid(learn):
    "The number of validation batches, so that the probe's fixed batches are the whole of `learn.validate()`"
    return len(learn.dls.valid)


MAKERS = dict(awd_lstm=text_learner, dict_output=dict_learner, mixup=mixup_learner)


@pytest.mark.parametrize('name', MAKERS)
def test_probe_matches_validate_at_the_starting_weights(tmp_path, name):
    learn = MAKERS[name](tmp_path)
    expected = validate(learn)
    before = weights(learn)
    find(learn, valid_batches=whole_valid(learn), **FROZEN)
    rec = learn.recorder.lr_find_record
    assert len(rec.valid_losses) == 3
    np.testing.assert_allclose(rec.valid_losses, expected, rtol=1e-5)
    assert_same_weights(before, weights(learn))
    assert validate(learn) == pytest.approx(expected, rel=1e-6), "the learner validates as before the range test"


def test_mixup_probe_is_the_plain_validation_loss_not_mixups_training_loss(tmp_path):
    "Under MixUp the training loss function is MixUp's; the probe's is the learner's own, as in validation"
    learn = mixup_learner(tmp_path)
    find(learn, valid_batches=1, **FROZEN)
    rec = learn.recorder.lr_find_record
    x, y = learn.dls.valid.one_batch()
    with torch.no_grad(): plain = learn.loss_func(learn.model.eval()(x), y).item()
    learn.model.train()
    np.testing.assert_allclose(rec.valid_losses, plain, rtol=1e-5)
    assert not isinstance(learn.loss_func, type(MixUp().lf)), "MixUp's loss function was put back"


@pytest.mark.parametrize('name', MAKERS)
def test_fit_after_probing_is_fit_alone(tmp_path, name):
    "The probe leaves no trace: training after lr_find(valid_every=...) is bit-identical to training alone (weights, RNG, data order, the Recorder's books)"
    alone = MAKERS[name](tmp_path, seed=1)
    with quiet(alone): alone.fit(1, 1e-3)
    probed = MAKERS[name](tmp_path, seed=1)
    find(probed, num_it=20, valid_every=3, valid_batches=2)
    assert probed.recorder.lr_find_record.valid_losses
    with quiet(probed): probed.fit(1, 1e-3)
    assert_same_weights(weights(alone), weights(probed))
    assert probed.recorder.values == alone.recorder.values


def test_probe_keeps_the_training_hidden_state_of_an_rnn(tmp_path):
    "ModelResetter resets AWD_LSTM's hidden state for the probe, as for a validation; training carries on from its own"
    learn = text_learner(tmp_path)
    seen = []
    class Watch(Callback):
        order = 100
        def before_batch(self):
            if self.training: seen.append([h.clone() for h, _ in self.model[0].hidden])
    learn.add_cb(Watch())
    find(learn, start_lr=1e-3, end_lr=1e-2, num_it=8, valid_every=2, stop_div=False)
    with_probe = seen[:]
    seen.clear()
    learn2 = text_learner(tmp_path)
    learn2.add_cb(Watch())
    find(learn2, start_lr=1e-3, end_lr=1e-2, num_it=8, stop_div=False)
    assert len(with_probe) == len(seen) == 8
    for a, b in zip(with_probe, seen):
        for x, y in zip(a, b): assert torch.equal(x, y)
