"""The test command: `nox` runs every supported dependency stack, each in a fresh virtual environment installed with pip.

- newest: what `pip install lrfinder_cb` resolves to today (newest fastai, fastcore 2, torch within this machine's cap), plus test tools
          and fastai's loggers (TensorBoard, W&B in disabled mode);
          pytest, which also runs every notebook (tests/test_notebooks.py, as nbdev_test would: nbdev 2 cannot import under fastcore 2).
- oldest: the lowest version of every dependency pyproject.toml declares (`>=` read as `==`); pytest and the notebooks as above.
- nbdev:  the nbdev 2 development stack (with fastai's loggers: fastai 2.8.12's WandbCallback fails under fastcore 2 by itself);
          fails if `nbdev_clean` or `nbdev_export` would change tracked files, then runs
          `nbdev_test`, nbdev's processing of every notebook for the docs (tests/docs_check.py: what `nbdev_docs` does before
          Quarto, which cannot be installed here; it fails on any error, and if the site files it writes differ from those
          committed), and pytest (without the notebook runner, which would repeat nbdev_test).

Each stack's virtual environment holds a CUDA build of torch (5-6 GB: the only build PyPI has), and three at once filled a CI
machine's disk; so a session removes its environment when it ends, and pip keeps no cache. `LRFINDER_KEEP_VENVS=1 nox` keeps them
(`.nox/<stack>/bin/python -m pytest ...` then reruns a test on one stack).
"""
import functools, os, shutil, tomllib
from pathlib import Path
import nox

nox.options.default_venv_backend = 'venv'
nox.options.sessions = ['nbdev', 'newest', 'oldest']
nox.options.error_on_missing_interpreters = True

PYPROJECT = tomllib.loads(Path('pyproject.toml').read_text())
# Not ours to declare, but pinned with the oldest torch: torchvision so that pip does not walk back through every release to find the match,
# accelerate (a test tool, for fastai's `distrib_ctx`) because its newest releases call `torch.cpu.device_count`, which torch 2.0 lacks.
OLDEST_COMPANIONS = {'torch==2.0.0': ['torchvision==0.15.1', 'accelerate==0.21.0']}
STACK = ("import sys, fastai, fastcore, torch, numpy, matplotlib, sklearn; "
         "print(f'stack: python {sys.version.split()[0]}, fastai {fastai.__version__}, fastcore {fastcore.__version__}, '"
         "f'torch {torch.__version__}, numpy {numpy.__version__}, matplotlib {matplotlib.__version__}, scikit-learn {sklearn.__version__}')")
ENV = {'MPLBACKEND': 'Agg'}
KEEP_VENVS = os.environ.get('LRFINDER_KEEP_VENVS') == '1'


def floors() -> list:
    "Every dependency of pyproject.toml pinned to its declared lower bound"
    pins = []
    for req in PYPROJECT['project']['dependencies']:
        name, sep, version = req.partition('>=')
        if not sep: raise ValueError(f"dependency {req!r} has no lower bound: declare one so that the oldest stack can test it")
        pin = f"{name}=={version.split(',')[0]}"
        pins += [pin, *OLDEST_COMPANIONS.get(pin, [])]
    return pins


def show_stack(session):
    session.run('python', '-c', STACK, env=ENV)
    session.log(f"disk: {shutil.disk_usage(session.virtualenv.location).free / 2**30:.1f} GiB free")


def stack(body):
    "A nox session that removes its virtual environment when it ends, passed or failed (`install` keeps pip's cache off)"
    @functools.wraps(body)
    def session(session):
        try: body(session)
        finally:
            if not KEEP_VENVS: shutil.rmtree(session.virtualenv.location, ignore_errors=True)
    return nox.session(session)


def install(session, *args):
    session.install('--no-cache-dir', *args)


@stack
def newest(session):
    install(session, '--upgrade', '-e', '.[test,loggers]')
    show_stack(session)
    session.run('pytest', *session.posargs, env=ENV)


@stack
def oldest(session):
    install(session, '-e', '.[test]', *floors())
    show_stack(session)
    session.run('pytest', *session.posargs, env=ENV)


@stack
def nbdev(session):
    install(session, '-e', '.[dev,loggers]')
    show_stack(session)
    session.run('nbdev_clean')
    session.run('nbdev_export')
    changed = session.run('git', 'status', '--porcelain', silent=True, external=True)
    if changed.strip():
        session.error(f"nbdev_clean/nbdev_export changed the tree: notebooks and library are out of sync (commit the result):\n{changed}")
    session.run('nbdev_test', '--n_workers', '2', env=ENV)
    session.run('python', 'tests/docs_check.py', env=ENV)
    changed = session.run('git', 'status', '--porcelain', silent=True, external=True)
    if changed.strip(): session.error(f"nbdev's docs processing rewrote site files (commit what it writes):\n{changed}")
    session.run('pytest', '--ignore=tests/test_notebooks.py', *session.posargs, env=ENV)
