"""The suggestion benchmark (issue 9): range tests and LR-grid training on 44 small configurations, 5 seeds each, cached.

    python benchmarks/suggestion_quality.py [--jobs 2] [--quick] [--only NAME ...] [--cache benchmarks/results/suggestion_runs]
    python benchmarks/suggestion_cv.py      # the tables: re-scores every rule offline from this cache

For each configuration and seed: build the Learner (data fixed, initial weights from the seed), run one range test
(`lr_find()`, its defaults: 100 steps from 1e-7 to 10) and store its record, and one of `lr_find(n_runs=3)` (three data orders);
then, from the same initial weights and seed, train the configuration's recipe at each of the 23 grid learning rates
(1e-5 to 10**0.5, 4 a decade) and store the final validation loss
(`null` when it diverged). Nothing here knows about any rule: rules are scored offline (see suggestion_cv.py).

The cache is one JSON file per configuration and seed, written after every grid point, so a killed run resumes where it stopped.
`--quick` runs a 4-configuration, 1-seed subset with a 7-point grid (about a minute). `--set design` runs only the
configurations used in design, `--set heldout` only the held-out ones. All data is bundled with scikit-learn or synthetic.

The held-out configurations (`HELD_OUT`: every SGD configuration and every `fine_tune` one) were fixed before any design work,
and are scored once, at the end.
"""
import argparse, json, math, sys, time, warnings
from functools import partial
from pathlib import Path
warnings.filterwarnings('ignore')
import numpy as np
import torch
from torch import nn

GRID = [10**(-5 + i/4) for i in range(23)]
QUICK_GRID = GRID[4::3]
CACHE = Path(__file__).parent/'results'/'suggestion_runs'


# ---------- data (fixed; the seed only moves initial weights and batch order) ----------
def _split(x, y, n_valid):
    idx = np.random.default_rng(0).permutation(len(x))
    return (x[idx[n_valid:]], y[idx[n_valid:]]), (x[idx[:n_valid]], y[idx[:n_valid]])

def _std(x): return (x - x.mean(0))/(x.std(0) + 1e-8)
def _target(y): return ((y - y.mean())/y.std())[:, None].astype(np.float32)

def digits(n_train=None):
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    train, valid = _split((x/16.).astype(np.float32), y, 397)
    if n_train: train = (train[0][:n_train], train[1][:n_train])
    return train, valid

def cancer():
    from sklearn.datasets import load_breast_cancer
    x, y = load_breast_cancer(return_X_y=True)
    return _split(_std(x).astype(np.float32), y, 114)

def blobs(n=3000):
    from sklearn.datasets import make_classification
    x, y = make_classification(n_samples=n, n_features=20, n_informative=10, n_classes=4, random_state=7)
    return _split(_std(x).astype(np.float32), y, n//5)

def friedman(n=3000):
    from sklearn.datasets import make_friedman1
    x, y = make_friedman1(n_samples=n, n_features=10, noise=1.0, random_state=11)
    return _split(_std(x).astype(np.float32), _target(y), n//5)

def sine(n=2500):
    g = np.random.default_rng(1234)
    x = g.standard_normal((n, 10)).astype(np.float32); w1, w2 = g.standard_normal(10), g.standard_normal(10)
    y = np.sin(x @ w1) + 0.1*(x @ w2)**2 + 0.1*g.standard_normal(n)
    return _split(x, _target(y), n//5)

def multilabel():
    from sklearn.datasets import make_multilabel_classification
    x, y = make_multilabel_classification(n_samples=3000, n_features=20, n_classes=6, n_labels=2, random_state=3)
    return _split(_std(x).astype(np.float32), y.astype(np.float32), 600)

DATA = dict(digits=digits, digits_small=partial(digits, 300), cancer=cancer, blobs=blobs, blobs_large=partial(blobs, 20000),
            friedman=friedman, sine=sine, sine_large=partial(sine, 20000), multilabel=multilabel)


# ---------- models ----------
def mlp(n_in, n_out, width=64, depth=2, bn=False, dropout=0.):
    layers, d = [], n_in
    for _ in range(depth):
        layers += [nn.Linear(d, width)] + ([nn.BatchNorm1d(width)] if bn else []) + [nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        d = width
    return nn.Sequential(nn.Sequential(*layers), nn.Linear(d, n_out))

def resmlp(n_in, n_out, width=64, blocks=3):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Sequential(nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, width))
        def forward(self, x): return x + self.f(x)
    return nn.Sequential(nn.Sequential(nn.Linear(n_in, width), *[Block() for _ in range(blocks)], nn.ReLU()), nn.Linear(width, n_out))

def cnn(n_out, bn=False, residual=False):
    def conv(ci, co, stride=1):
        return nn.Sequential(nn.Conv2d(ci, co, 3, padding=1, stride=stride), *([nn.BatchNorm2d(co)] if bn else []), nn.ReLU())
    class Res(nn.Module):
        def __init__(self, c):
            super().__init__(); self.f = nn.Sequential(conv(c, c), conv(c, c))
        def forward(self, x): return x + self.f(x)
    class Images(nn.Module):
        def forward(self, x): return x.view(-1, 1, 8, 8)
    body = [Images(), conv(1, 16), conv(16, 32, 2)] + ([Res(32)] if residual else []) + [nn.Flatten()]
    return nn.Sequential(nn.Sequential(*body), nn.Linear(32*4*4, n_out))

def rnn(n_out, kind='gru'):
    class Rows(nn.Module):
        "An 8x8 digit read as a sequence of 8 rows"
        def __init__(self):
            super().__init__(); self.rnn = (nn.GRU if kind == 'gru' else nn.LSTM)(8, 64, batch_first=True)
        def forward(self, x): return self.rnn(x.view(-1, 8, 8))[0][:, -1]
    return nn.Sequential(Rows(), nn.Linear(64, n_out))


# ---------- configurations ----------
def C(name, group, data, model, loss='ce', opt='adam', recipe='oc3', bs=64, **kw):
    return dict(name=name, group=group, data=data, model=model, loss=loss, opt=opt, recipe=recipe, bs=bs, **kw)

CONFIGS = [
    # design configurations: 8 groups for leave-one-group-out cross-validation
    C('digits_mlp', 'digits_mlp', 'digits', 'mlp'),
    C('digits_mlp_oc1', 'digits_mlp', 'digits', 'mlp', recipe='oc1'),
    C('digits_mlp_oc10', 'digits_mlp', 'digits', 'mlp', recipe='oc10'),
    C('digits_mlp_const', 'digits_mlp', 'digits', 'mlp', recipe='const3'),
    C('digits_mlp_bs16', 'digits_mlp', 'digits', 'mlp', bs=16),
    C('digits_mlp_adamw', 'digits_mlp', 'digits', 'mlp', opt='adamw'),
    C('digits_deep_mlp', 'digits_mlp', 'digits', 'mlp_deep'),
    C('digits_small_mlp_oc10', 'digits_mlp', 'digits_small', 'mlp', recipe='oc10', bs=16),
    C('digits_cnn', 'digits_cnn', 'digits', 'cnn'),
    C('digits_cnn_bn', 'digits_cnn', 'digits', 'cnn_bn'),
    C('digits_cnn_bn_radam', 'digits_cnn', 'digits', 'cnn_bn', opt='radam', bs=128),
    C('digits_resnet', 'digits_cnn', 'digits', 'resnet'),
    C('digits_cnn_const', 'digits_cnn', 'digits', 'cnn', recipe='const3', bs=32),
    C('cancer_bn', 'cancer', 'cancer', 'mlp_bn', bs=32),
    C('cancer_mlp_oc10', 'cancer', 'cancer', 'mlp', recipe='oc10', bs=32),
    C('cancer_mlp_lamb', 'cancer', 'cancer', 'mlp', opt='lamb', bs=16),
    C('blobs_dropout', 'blobs', 'blobs', 'mlp_dropout', bs=128),
    C('blobs_mlp_radam_oc1', 'blobs', 'blobs', 'mlp', opt='radam', recipe='oc1'),
    C('blobs_resmlp_adamw', 'blobs', 'blobs', 'resmlp', opt='adamw', bs=256),
    C('blobs_large_bs512', 'blobs', 'blobs_large', 'mlp', recipe='oc3', bs=512),
    C('blobs_large_oc1', 'blobs', 'blobs_large', 'mlp', recipe='oc1', bs=64),
    C('friedman_bn', 'regression', 'friedman', 'mlp_bn', loss='mse'),
    C('friedman_mlp_const', 'regression', 'friedman', 'mlp', loss='mse', recipe='const3'),
    C('sine_mlp_oc10', 'regression', 'sine', 'mlp', loss='mse', recipe='oc10'),
    C('sine_large_radam_bs512', 'regression', 'sine_large', 'mlp', loss='mse', opt='radam', bs=512),
    C('multilabel_mlp', 'multilabel', 'multilabel', 'mlp', loss='bce'),
    C('multilabel_bn_lamb', 'multilabel', 'multilabel', 'mlp_bn', loss='bce', opt='lamb', bs=128),
    C('multilabel_mlp_const', 'multilabel', 'multilabel', 'mlp', loss='bce', recipe='const3', bs=32),
    C('tabular', 'tabular', 'tabular', 'tabular'),
    C('tabular_adamw_oc10', 'tabular', 'tabular', 'tabular', opt='adamw', recipe='oc10', bs=256),
    C('tabular_regression', 'tabular', 'tabular_reg', 'tabular', loss='mse', bs=128),
    C('digits_gru', 'rnn', 'digits', 'gru'),
    C('digits_lstm_radam', 'rnn', 'digits', 'lstm', opt='radam', bs=32),
    C('digits_gru_const', 'rnn', 'digits', 'gru', recipe='const3'),
    # held out, frozen before design: every SGD configuration and every fine_tune one
    C('digits_mlp_sgd', 'heldout_sgd', 'digits', 'mlp', opt='sgd'),
    C('digits_cnn_bn_sgd', 'heldout_sgd', 'digits', 'cnn_bn', opt='sgd'),
    C('blobs_dropout_sgd_oc1', 'heldout_sgd', 'blobs', 'mlp_dropout', opt='sgd', recipe='oc1', bs=32),
    C('friedman_bn_sgd_oc10', 'heldout_sgd', 'friedman', 'mlp_bn', loss='mse', opt='sgd', recipe='oc10', bs=128),
    C('tabular_sgd', 'heldout_sgd', 'tabular', 'tabular', opt='sgd'),
    C('multilabel_sgd_const', 'heldout_sgd', 'multilabel', 'mlp', loss='bce', opt='sgd', recipe='const3'),
    C('digits_mlp_ft', 'heldout_ft', 'digits', 'mlp', recipe='ft3', pretrain='digits_0to4'),
    C('digits_cnn_ft', 'heldout_ft', 'digits', 'cnn', recipe='ft3', pretrain='digits_parity'),
    C('blobs_ft', 'heldout_ft', 'blobs', 'mlp', recipe='ft3', pretrain='blobs_pairs', bs=128),
    C('friedman_ft', 'heldout_ft', 'friedman', 'mlp_bn', loss='mse', recipe='ft3', pretrain='friedman_squared'),
]
BY_NAME = {c['name']: c for c in CONFIGS}
HELD_OUT_GROUPS = ('heldout_sgd', 'heldout_ft')
QUICK = ['digits_mlp', 'cancer_bn', 'multilabel_mlp', 'digits_mlp_sgd']


# ---------- building a Learner ----------
def tabular_frame(n, regression):
    """Three categorical columns (8, 30 and 100 levels) with embeddable effects and five continuous ones"""
    import pandas as pd
    g = np.random.default_rng(5)
    cats = {f'c{i}': g.integers(0, k, n) for i, k in enumerate((8, 30, 100))}
    conts = {f'x{i}': g.standard_normal(n) for i in range(5)}
    effects = [g.standard_normal(k) for k in (8, 30, 100)]
    z = sum(e[cats[f'c{i}']] for i, e in enumerate(effects)) + np.sin(conts['x0']*2) + conts['x1']*conts['x2'] + 0.3*g.standard_normal(n)
    df = pd.DataFrame({**cats, **conts})
    df['y'] = _target(z)[:, 0] if regression else np.digitize(z, np.quantile(z, [.25, .5, .75]))
    return df

_memo = {}

def _tabular_learner(cfg, loss_func, opt_func, wd):
    from fastai.tabular.all import TabularPandas, Categorify, Normalize, CategoryBlock, RegressionBlock, tabular_learner, IndexSplitter
    from fastai.losses import CrossEntropyLossFlat, MSELossFlat
    regression = cfg['loss'] == 'mse'
    loss_func = MSELossFlat() if regression else CrossEntropyLossFlat() # tabular targets come as a column
    if regression not in _memo:
        df = tabular_frame(4000, regression)
        _memo[regression] = TabularPandas(df, procs=[Categorify, Normalize], cat_names=['c0', 'c1', 'c2'], cont_names=[f'x{i}' for i in range(5)],
                                          y_names='y', y_block=RegressionBlock() if regression else CategoryBlock(),
                                          splits=IndexSplitter(list(range(800)))(range(len(df))))
    dls = _memo[regression].dataloaders(bs=cfg['bs'], val_bs=256)
    return tabular_learner(dls, layers=[128, 64], opt_func=opt_func, loss_func=loss_func, **({} if wd is None else dict(wd=wd)))


def _pretrained(cfg, seed, model, data):
    "Pre-train the body on a related synthetic task (3 epochs of one-cycle Adam at 3e-3), then give it a fresh head"
    from fastai.learner import Learner
    from fastai.torch_core import set_seed
    key = (cfg['name'], seed)
    if key not in _memo:
        (xt, yt), (xv, yv) = data
        task = cfg['pretrain']
        if task == 'digits_0to4': src, n = (xt[yt < 5], yt[yt < 5]), 5
        elif task == 'digits_parity': src, n = (xt, yt % 2), 2
        elif task == 'blobs_pairs': src, n = (xt, yt // 2), 2
        else: src, n = (xt, np.sign(yt)*yt**2), 1
        head_out = model[1].out_features
        model[1] = nn.Linear(model[1].in_features, n)
        set_seed(seed)
        learn = Learner(_loaders(src, (xv[:64], (yv[:64] % n) if n > 1 else yv[:64]), 64), model,
                        loss_func=nn.CrossEntropyLoss() if n > 1 else nn.MSELoss())
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(3, 3e-3)
        model[1] = nn.Linear(model[1].in_features, head_out)
        _memo[key] = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(_memo[key])
    return model


def _loaders(train, valid, bs):
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    def ds(x, y): return list(zip(torch.tensor(x), torch.tensor(y)))
    return DataLoaders(DataLoader(ds(*train), bs=bs, shuffle=True, drop_last=True), DataLoader(ds(*valid), bs=256))


def build(cfg, seed):
    "A fresh Learner for `cfg`: fixed data, initial weights and batch order from `seed`"
    import fastai.callback.all # noqa: F401  (fit_one_cycle, fine_tune, no_bar)
    from fastai.learner import Learner
    from fastai.optimizer import Adam, SGD, RAdam, Lamb
    from fastai.torch_core import set_seed, params
    opt_func = dict(adam=Adam, adamw=Adam, sgd=partial(SGD, mom=0.9), radam=RAdam, lamb=Lamb)[cfg['opt']]
    wd = 0.1 if cfg['opt'] == 'adamw' else None
    loss_func = dict(ce=nn.CrossEntropyLoss(), mse=nn.MSELoss(), bce=nn.BCEWithLogitsLoss())[cfg['loss']]
    set_seed(seed)
    if cfg['model'] == 'tabular': return _tabular_learner(cfg, loss_func, opt_func, wd)
    if cfg['data'] not in _memo: _memo[cfg['data']] = DATA[cfg['data']]()
    data = _memo[cfg['data']]
    (xt, yt), _ = data
    n_in = xt.shape[1]
    n_out = yt.shape[1] if yt.ndim > 1 else int(yt.max()) + 1
    m = cfg['model']
    model = (mlp(n_in, n_out) if m == 'mlp' else mlp(n_in, n_out, depth=5) if m == 'mlp_deep' else mlp(n_in, n_out, bn=True) if m == 'mlp_bn'
             else mlp(n_in, n_out, width=128, dropout=0.2) if m == 'mlp_dropout' else resmlp(n_in, n_out) if m == 'resmlp'
             else cnn(n_out) if m == 'cnn' else cnn(n_out, bn=True) if m == 'cnn_bn' else cnn(n_out, bn=True, residual=True) if m == 'resnet'
             else rnn(n_out, 'gru') if m == 'gru' else rnn(n_out, 'lstm'))
    if cfg.get('pretrain'): model = _pretrained(cfg, seed, model, data)
    set_seed(seed)
    kw = {} if wd is None else dict(wd=wd)
    learn = Learner(_loaders(*data, cfg['bs']), model, loss_func=loss_func, opt_func=opt_func,
                    splitter=lambda m: [params(m[0]), params(m[1])], **kw)
    if cfg.get('pretrain'): learn.freeze() # as a pre-trained fastai learner comes: the range test sees the frozen body
    return learn


def train(cfg, seed, lr):
    "Final validation loss of the configuration's recipe at `lr` (None when it diverged)"
    from fastai.torch_core import set_seed
    learn = build(cfg, seed)
    set_seed(seed)
    r = cfg['recipe']
    with learn.no_bar(), learn.no_logging():
        if r.startswith('oc'): learn.fit_one_cycle(int(r[2:]), lr)
        elif r.startswith('const'): learn.fit(int(r[5:]), lr)
        else: learn.fine_tune(int(r[2:]), base_lr=lr)
    return final_valid_loss(learn)


def final_valid_loss(learn):
    "The validation loss of the last epoch (None when it is not finite); `Recorder.values` rows start with the training loss"
    loss = float(learn.recorder.values[-1][learn.recorder.metric_names.index('valid_loss') - 1])
    return loss if math.isfinite(loss) else None


def range_test(cfg, seed, n_runs=1):
    import lrfinder_cb # noqa: F401  (our lr_find)
    from fastai.torch_core import set_seed
    learn = build(cfg, seed)
    set_seed(seed)
    with learn.no_bar(), learn.no_logging(): learn.lr_find(show_plot=False, suggest_funcs=None, n_runs=n_runs)
    return learn.recorder.lr_find_record.as_dict()


def full_sweeps(cfg, seed) -> dict:
    "The range tests of `range_test`, run to the end (`stop_div=False`): raw losses every stop rule can be replayed on, offline"
    import lrfinder_cb # noqa: F401  (our lr_find)
    from fastai.torch_core import set_seed
    res = {}
    for key, n_runs in (('record', 1), ('record3', 3)):
        learn = build(cfg, seed)
        set_seed(seed)
        with learn.no_bar(), learn.no_logging(): learn.lr_find(show_plot=False, suggest_funcs=None, n_runs=n_runs, stop_div=False)
        rec = learn.recorder.lr_find_record
        res[key] = [dict(losses=r.losses, group_lrs=[list(g) for g in r.group_lrs], stop_reason=r.stop_reason) for r in (rec.runs or [rec])]
    return res


def run_full(job):
    "Add the full sweeps to one cache file (see `full_sweeps`)"
    name, seed, _, cache = job
    torch.set_num_threads(1)
    path = Path(cache)/f"{name}__{seed}.json"
    entry = json.loads(path.read_text())
    start = time.time()
    if 'sweeps' not in entry:
        entry['sweeps'] = full_sweeps(BY_NAME[name], seed)
        path.write_text(json.dumps(entry))
    return name, seed, time.time() - start


def run_one(job):
    "One configuration and seed, resumed from (and saved to) its cache file"
    name, seed, grid, cache = job
    torch.set_num_threads(1)
    path = Path(cache)/f"{name}__{seed}.json"
    entry = json.loads(path.read_text()) if path.exists() else dict(config=BY_NAME[name], seed=seed, grid={})
    start = time.time()
    if 'record' not in entry:
        entry['record'] = range_test(BY_NAME[name], seed)
        entry['record3'] = range_test(BY_NAME[name], seed, n_runs=3)
        path.write_text(json.dumps(entry))
    for lr in grid:
        key = f"{lr:.6e}"
        if key in entry['grid']: continue
        entry['grid'][key] = train(BY_NAME[name], seed, lr)
        path.write_text(json.dumps(entry))
    return name, seed, time.time() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, default=5)
    p.add_argument('--set', choices=('all', 'design', 'heldout'), default='all')
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--quick', action='store_true', help="4 configurations, 1 seed, 7 grid points: minutes")
    p.add_argument('--only', nargs='*', help="configuration names")
    p.add_argument('--cache', default=str(CACHE))
    p.add_argument('--full-sweeps', action='store_true', help="add each cached run's range tests without the stop rule (issue 15: replay stop rules offline)")
    args = p.parse_args(argv)
    chosen = [c['name'] for c in CONFIGS if args.set == 'all' or (c['group'] in HELD_OUT_GROUPS) == (args.set == 'heldout')]
    names = args.only or (QUICK if args.quick else chosen)
    bad = [n for n in names if n not in BY_NAME]
    if bad: p.error(f"--only: unknown configurations {bad}; known: {', '.join(BY_NAME)}")
    cache = Path(args.cache)
    if args.quick and args.cache == str(CACHE): cache = cache.parent/'suggestion_runs_quick'
    cache.mkdir(parents=True, exist_ok=True)
    grid = QUICK_GRID if args.quick else GRID
    jobs = [(n, s, grid, str(cache)) for s in range(1 if args.quick else args.seeds) for n in names]
    run_jobs(run_full if args.full_sweeps else run_one, jobs, args.jobs, cache)


def run_jobs(work, jobs, n_jobs, cache):
    "`work` on every job (`n_jobs` processes), a line per job as it ends"
    start = time.time()
    if n_jobs > 1:
        import multiprocessing as mp
        with mp.get_context('spawn').Pool(n_jobs) as pool:
            for name, seed, took in pool.imap_unordered(work, jobs): print(f"{name} seed {seed}: {took:.0f} s", flush=True)
    else:
        for job in jobs: print("{} seed {}: {:.0f} s".format(*work(job)), flush=True)
    print(f"done in {time.time() - start:.0f} s; cache {cache}")


if __name__ == '__main__': sys.exit(main())
