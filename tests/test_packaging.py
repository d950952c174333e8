"The package metadata, README and CI agree with each other."
import configparser, json, re, tomllib
from pathlib import Path
import lrfinder_cb

ROOT = Path(__file__).parent.parent


def settings(): 
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini'); return cfg['DEFAULT']


def pyproject(): return tomllib.loads((ROOT/'pyproject.toml').read_text())


def test_versions_agree():
    assert settings()['version'] == pyproject()['project']['version'] == lrfinder_cb.__version__


def test_requirements_agree():
    assert settings()['requirements'].split() == pyproject()['project']['dependencies']
    assert settings()['dev_requirements'].split() == pyproject()['project']['optional-dependencies']['dev']
    assert any(r.startswith('nbdev>=2.4.14,<3') for r in pyproject()['project']['optional-dependencies']['dev'])
    assert all('>=' in r for r in pyproject()['project']['dependencies']), "every dependency needs a floor for the oldest stack"


def _sh_blocks(text): return re.findall(r"```sh\n(.*?)\n```", text, flags=re.S)


def test_readme_shows_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT/'README.md').read_text()
    demo, tests = _sh_blocks(readme)[:2]
    assert 'lr-find --demo' in demo and 'pip install' in demo
    assert tests == 'pip install nox && nox'
    assert tests in (ROOT/'.ci'/'run').read_text().splitlines()
    noxfile = (ROOT/'noxfile.py').read_text()
    assert "nox.options.sessions = ['nbdev', 'newest', 'oldest']" in noxfile
    index = json.loads((ROOT/'nbs'/'index.ipynb').read_text())
    index_md = '\n'.join(''.join(c['source']) for c in index['cells'] if c['cell_type'] == 'markdown')
    assert _sh_blocks(index_md)[:2] == [demo, tests]


def test_readme_code_blocks_run_as_written(tmp_path, monkeypatch):
    "Every ```python block of the README runs as written, in order, in one namespace (except those marked as not run)"
    readme = (ROOT/'README.md').read_text()
    blocks = re.findall(r"(<!-- not run[^>]*-->\n)?```python\n(.*?)\n```", readme, flags=re.S)
    runnable = [code for marker, code in blocks if not marker]
    assert len(runnable) >= 1 and len(blocks) > len(runnable)
    monkeypatch.chdir(tmp_path)
    namespace = {'__name__': '__readme__'}
    for code in runnable: exec(compile(code, 'README.md', 'exec'), namespace)
    assert namespace['res'].record is not None


def test_readme_pipeline_example_reaches_num_it(tmp_path):
    "The README's `learn.fit(10, cbs=LRFinder(num_it=200))` on the demo learner runs all 200 steps"
    import warnings
    from lrfinder_cb.all import LRFinder, LRFinderWarning
    from lrfinder_cb.cli import demo_learner
    readme = (ROOT/'README.md').read_text()
    assert '`learn.fit(10, cbs=LRFinder(num_it=200))`' in readme
    learn = demo_learner(path=tmp_path)
    with learn.no_bar(), learn.no_logging(), warnings.catch_warnings():
        warnings.simplefilter('ignore', LRFinderWarning)
        learn.fit(10, cbs=LRFinder(num_it=200, stop_div=False, end_lr=1.))
    assert learn.recorder.lr_find_record.n_steps == 200
