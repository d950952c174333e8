"""Run a notebook's code cells the way `nbdev_test` does, without nbdev (which cannot import under fastcore 2).

Usage: python tests/nbrun.py nbs/00_core.ipynb [--flags slow]

Cells are run in order in one namespace, from the notebook's folder. Skipped, as nbdev_test skips them: cells that call
`nbdev_export()`, cells marked `#|eval: false`, and cells carrying a flag of `tst_flags` in settings.ini (`#|slow`, `#|notest`)
unless that flag is passed with --flags. `from nbdev.showdoc import *` gets a stand-in `show_doc` when nbdev is not installed:
it renders documentation, and tests nothing.
"""
import __future__, argparse, configparser, json, os, sys, traceback, types
from pathlib import Path


def directives(source:str) -> dict:
    "The `#|name args` lines at the top of a cell, as {name: args}"
    found = {}
    for line in source.splitlines():
        line = line.strip()
        if not line: continue
        if not line.startswith('#|'): break
        name, _, args = line[2:].strip().partition(' ')
        found[name.rstrip(':').lower()] = args.strip().lower()
    return found


def skip_reason(source:str, test_flags:set, run_flags:set):
    if 'nbdev_export()' in source: return 'exports'
    found = directives(source)
    if found.get('eval') == 'false': return 'eval: false'
    flagged = (test_flags & set(found)) - run_flags
    return f"flag {sorted(flagged)[0]}" if flagged else None


def stub_nbdev():
    "A stand-in for `nbdev.showdoc` when nbdev cannot be imported"
    try:
        import nbdev.showdoc  # noqa: F401
        return
    except Exception: pass
    nbdev = types.ModuleType('nbdev'); showdoc = types.ModuleType('nbdev.showdoc')
    showdoc.show_doc = lambda *args, **kwargs: None
    showdoc.__all__ = ['show_doc']
    nbdev.showdoc, nbdev.nbdev_export = showdoc, lambda *args, **kwargs: None
    sys.modules.update({'nbdev': nbdev, 'nbdev.showdoc': showdoc})


def run(path:Path, run_flags:set) -> int:
    root = path.resolve().parent.parent
    cfg = configparser.ConfigParser(); cfg.read(root/'settings.ini')
    test_flags = set(cfg['DEFAULT'].get('tst_flags', '').split())
    cells = json.loads(path.read_text())['cells']
    stub_nbdev()
    os.chdir(path.resolve().parent)
    namespace, flags = sys.modules['__main__'].__dict__, 0  # a real module, so that what a cell defines can be pickled
    futures = 0
    for name in __future__.all_feature_names: futures |= getattr(__future__, name).compiler_flag
    for i, cell in enumerate(cells):
        if cell['cell_type'] != 'code': continue
        source = ''.join(cell['source'])
        if skip_reason(source, test_flags, run_flags): continue
        try:
            code = compile(source, f"{path.name} cell {cell.get('id', i)}", 'exec', flags=flags, dont_inherit=True)
            flags |= code.co_flags & futures  # `from __future__ import ...` holds for the cells after it, as in IPython
            exec(code, namespace)
        except BaseException:
            print(f"{path.name}: cell {cell.get('id', i)} failed:\n{source}\n", file=sys.stderr)
            traceback.print_exc()
            return 1
    return 0


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('notebook', type=Path)
    parser.add_argument('--flags', default='', help="flags of tst_flags to run anyway, space-separated")
    args = parser.parse_args()
    sys.exit(run(args.notebook, set(args.flags.split())))
