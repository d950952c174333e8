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


def test_docs_build_leaves_the_readme_alone():
    "README.md is written by hand: nbdev_docs renders `readme_nb` into it only when that notebook exists (nbdev's quarto.py)"
    readme_nb = settings()['readme_nb']
    assert readme_nb != 'index.ipynb' and not (ROOT/'nbs'/readme_nb).exists()
    index = json.loads((ROOT/'nbs'/'index.ipynb').read_text())
    assert not _sh_blocks('\n'.join(''.join(c['source']) for c in index['cells'])), "the home page shows usage, not developer set-up"


def test_readme_code_blocks_run_as_written(tmp_path, monkeypatch, capsys):
    "Every ```python block of the README runs as written, in order, in one namespace (except those marked as not run), and prints what its comments say"
    readme = (ROOT/'README.md').read_text()
    blocks = re.findall(r"(<!-- not run[^>]*-->\n)?```python\n(.*?)\n```", readme, flags=re.S)
    runnable = [code for marker, code in blocks if not marker]
    assert len(runnable) >= 1 and len(blocks) > len(runnable)
    monkeypatch.chdir(tmp_path)
    namespace = {'__name__': '__readme__'}
    for code in runnable: exec(compile(code, 'README.md', 'exec'), namespace)
    assert namespace['res'].record is not None
    printed = capsys.readouterr().out
    said = [m for code in runnable for m in re.findall(r'# prints "([^"]+)"', code)]
    assert len(said) >= 2
    for line in said: # '...' in a comment stands for any text
        assert re.search('.*'.join(map(re.escape, line.split('...'))), printed), line


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
    assert learn.recorder.lr_find_record.n_recorded == 200


def test_the_images_the_readmes_show_are_in_the_repository():
    "Every image README.md and benchmarks/README.md link is a file git tracks (a clone, GitHub and PyPI show it), not an ignored one"
    import subprocess
    tracked = set(subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines())
    for readme in (ROOT/'README.md', ROOT/'benchmarks'/'README.md'):
        links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme.read_text())
        assert links or readme.parent != ROOT, "README.md shows the benchmark's figure"
        for link in links:
            path = (readme.parent/link).resolve().relative_to(ROOT).as_posix()
            assert path in tracked, f"{readme.name} shows {link}, which git does not track"


def test_license_is_spdx_and_shipped():
    project = pyproject()['project']
    assert project['license'] == 'Apache-2.0' and project['license-files'] == ['LICENSE']
    text = (ROOT/'LICENSE').read_text()
    assert 'Apache License' in text and 'Version 2.0' in text and settings()['copyright'] in text
    assert not any(c.startswith('License ::') for c in project['classifiers']), "an SPDX `license` replaces the licence classifier"
    assert {'Repository', 'Documentation', 'Issues'} <= set(project['urls'])
    assert project['urls']['Repository'] == settings()['git_url']
    assert pyproject()['project']['entry-points']['nbdev'] == {'lrfinder_cb': 'lrfinder_cb._modidx:d'}


def test_readme_starts_with_pip_install():
    readme = (ROOT/'README.md').read_text()
    first_code = re.search(r"`([^`\n]*pip install[^`\n]*)`", readme).group(1)
    assert first_code == 'pip install lrfinder_cb'


def _site_packages() -> list:
    "This interpreter's import path without the repository (an editable install points there)"
    import sys
    inside = lambda p: Path(p).resolve() == ROOT or ROOT in Path(p).resolve().parents
    return [p for p in sys.path if p and Path(p).is_dir() and (not inside(p) or Path(p).name == 'site-packages')] # nox's venvs live in .nox/


def test_wheel_and_sdist_build_check_and_run_outside_the_repo(tmp_path):
    "`python -m build`, `twine check --strict`, the LICENSE in both, no tests in the sdist, and the wheel's `lr-find --demo` from a fresh venv"
    import subprocess, sys, tarfile, zipfile
    dist = tmp_path/'dist'
    subprocess.run([sys.executable, '-m', 'build', '--outdir', str(dist), str(ROOT)], check=True, capture_output=True, text=True)
    wheel, sdist = next(dist.glob('*.whl')), next(dist.glob('*.tar.gz'))
    subprocess.run([sys.executable, '-m', 'twine', 'check', '--strict', str(wheel), str(sdist)], check=True, capture_output=True, text=True)
    wheel_names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith('licenses/LICENSE') for n in wheel_names), wheel_names
    assert {'lrfinder_cb/cli.py', 'lrfinder_cb/_modidx.py', 'lrfinder_cb/py.typed'} <= set(wheel_names)
    sdist_names = tarfile.open(sdist).getnames()
    assert any(n.endswith('/LICENSE') for n in sdist_names) and not any('/tests/' in n for n in sdist_names)
    # A fresh venv with only the wheel installed; its dependencies come from this interpreter's path, not from the repository
    venv = tmp_path/'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    py = venv/'bin'/'python'
    subprocess.run([str(py), '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', str(wheel)], check=True)
    site = subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True).stdout.strip()
    (Path(site)/'_deps_from_test.pth').write_text('\n'.join(_site_packages()) + '\n')
    run = tmp_path/'run'; run.mkdir()
    where = subprocess.run([str(py), '-c', 'import lrfinder_cb; print(lrfinder_cb.__file__)'], cwd=run, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr[-2000:]
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    out = subprocess.run([str(venv/'bin'/'lr-find'), '--demo', '--out', 'demo.png', '--json', 'demo.json'], cwd=run,
                         capture_output=True, text=True, env={**__import__('os').environ, 'MPLBACKEND': 'Agg'})
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'between' in out.stdout and (run/'demo.png').stat().st_size > 1000 and json.loads((run/'demo.json').read_text())['suggestions']


def test_notebook_outputs_are_small_and_only_where_a_reader_looks():
    "Outputs only in visible cells, no stderr or progress bars, no image above 80 kB (STYLE.md: small PNGs, tens of kilobytes)"
    import base64
    for path in sorted((ROOT/'nbs').glob('*.ipynb')):
        for cell in json.loads(path.read_text())['cells']:
            outputs, source = cell.get('outputs', []), ''.join(cell['source'])
            if not outputs: continue
            where = f"{path.name} cell {cell['id']}"
            assert not re.search(r'^#\|\s*(hide|export)', source, re.M), f"{where}: a hidden or exported cell keeps outputs"
            for out in outputs:
                assert out.get('name') != 'stderr' and out['output_type'] != 'error', f"{where}: stderr or an error is saved"
                assert '█' not in ''.join(out.get('text', '')), f"{where}: a progress bar is saved"
                png = out.get('data', {}).get('image/png')
                if png: assert len(base64.b64decode(''.join(png))) < 80_000, f"{where}: image over 80 kB"
