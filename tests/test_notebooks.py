"Every notebook in nbs/ runs as nbdev_test would run it, on whatever stack pytest runs on (nbdev itself needs fastcore 1)."
import os, subprocess, sys
from pathlib import Path
import pytest
from nbrun import directives, skip_reason

NBS = Path(__file__).parent.parent/'nbs'


@pytest.mark.parametrize('notebook', sorted(p.name for p in NBS.glob('*.ipynb')))
def test_notebook_runs(notebook):
    env = {**os.environ, 'MPLBACKEND': 'Agg', 'PYTHONWARNINGS': 'ignore::FutureWarning'}
    out = subprocess.run([sys.executable, str(Path(__file__).parent/'nbrun.py'), str(NBS/notebook)],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-4000:]


def test_runner_skips_what_nbdev_test_skips():
    assert directives("#|hide\n#| eval: false\nx = 1\n#|export") == {'hide': '', 'eval': 'false'}
    flags = {'slow', 'notest'}
    assert skip_reason("#|slow\nx", flags, set()) == 'flag slow'
    assert skip_reason("#|slow\nx", flags, {'slow'}) is None
    assert skip_reason("#|eval: false\nx", flags, set()) == 'eval: false'
    assert skip_reason("#|hide\nimport nbdev; nbdev.nbdev_export()", flags, set()) == 'exports'
    assert skip_reason("#|hide\nx = 1", flags, set()) is None
