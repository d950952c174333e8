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


def _sh_blocks(text): return re.findall(r"```sh\n(.*?)\n```", text, flags=re.S)


def test_readme_shows_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT/'README.md').read_text()
    demo, tests = _sh_blocks(readme)[:2]
    assert 'lr-find --demo' in demo and 'pip install' in demo
    assert 'pytest' in tests and 'nbdev_test' in tests and 'pip install' in tests
    assert tests in (ROOT/'.ci'/'run').read_text().splitlines()
    index = json.loads((ROOT/'nbs'/'index.ipynb').read_text())
    index_md = '\n'.join(''.join(c['source']) for c in index['cells'] if c['cell_type'] == 'markdown')
    assert _sh_blocks(index_md)[:2] == [demo, tests]
