"""The package's shape, checked on every stack: the limits of STYLE.md and issue 27, which the local hook (`../shared/tools/structure.py`,
outside the repository) checks on a developer's machine and CI would otherwise not see."""
import ast, importlib.util, json, subprocess, sys, warnings
from pathlib import Path
import lrfinder_cb

PKG = Path(lrfinder_cb.__file__).parent
ROOT = PKG.parent
MODULES = {p.stem: p for p in sorted(PKG.glob('*.py')) if p.stem != '_modidx'} # `_modidx.py` is nbdev's generated index
# The modules that change fastai when imported, as `lrfinder_cb/__init__.py` lists them (`all` and `cli` import them)
PATCHING = {'learner', 'plot', 'callback', 'train', 'experiments', 'trial', 'all', 'cli', '__init__'}
# Issue 27 asks for 2,400 lines at most; until the team settles how (see the closing note of 2026-12-06), the library may not grow
LINE_RATCHET = 2934

def _lines(path:Path) -> list: return path.read_text().splitlines()

def test_no_module_over_300_lines_no_line_over_140_and_the_library_does_not_grow():
    sizes = {m: len(_lines(p)) for m,p in MODULES.items()}
    assert not {m: n for m,n in sizes.items() if n > 300}, "split the module: STYLE.md allows 300 lines"
    long = [f"{m}.py:{i}" for m,p in MODULES.items() for i,l in enumerate(_lines(p), 1) if len(l) > 140]
    assert not long, "STYLE.md allows 140 characters a line"
    assert sum(sizes.values()) <= LINE_RATCHET, f"the library grew to {sum(sizes.values())} lines (ratchet {LINE_RATCHET}): remove as many"

def _imports(path:Path) -> set:
    "The package's modules that `path` imports anywhere in its source (an import inside a function counts)"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            found |= {node.module.split('.')[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith('lrfinder_cb.'): found.add(node.module.split('.')[1])
        elif isinstance(node, ast.ImportFrom) and node.module == 'lrfinder_cb': found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import): found |= {a.name.split('.')[1] for a in node.names if a.name.startswith('lrfinder_cb.')}
    return found & set(MODULES)

def _circle(graph:dict) -> list|None:
    "One import circle of `graph` (module -> modules it imports), or `None`"
    done = set()
    def visit(m, path):
        if m in path: return path[path.index(m):] + [m]
        if m in done: return None
        for n in sorted(graph[m]):
            found = visit(n, path + [m])
            if found: return found
        done.add(m)
    return next((c for c in (visit(m, []) for m in graph) if c), None)

def test_no_import_circle_counting_imports_inside_functions():
    # `__init__` imports the patching modules for `import lrfinder_cb`; an `import lrfinder_cb` (cli: the version) is not an edge back
    graph = {m: _imports(p) - {'__init__', m} for m,p in MODULES.items() if m != '__init__'}
    assert _circle(graph) is None, f"import circle: {' -> '.join(_circle(graph))}"
    assert _circle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a'] # the check finds one where there is one

_PROBE = """
import importlib, json, sys, types, warnings
warnings.simplefilter('ignore')
import fastai.callback.all, fastai.learner as fl, fastai.callback.schedule as fs
def state(): return {'Learner': dict(vars(fl.Learner)), 'Recorder': dict(vars(fl.Recorder)), 'schedule': dict(vars(fs))}
def changed(a, b): return sorted(f"{k}.{n}" for k in a for n in set(a[k]) | set(b[k]) if a[k].get(n) is not b[k].get(n))
bare = types.ModuleType('lrfinder_cb') # the package without its `__init__`, which imports the patching modules
bare.__path__,bare.__version__ = [sys.argv[1]],'0'
sys.modules['lrfinder_cb'] = bare
out = {}
for name in json.loads(sys.argv[2]):
    before = state()
    importlib.import_module('lrfinder_cb.' + name)
    out[name] = changed(before, state())
print(json.dumps(out))
"""

def test_a_module_that_defines_no_patch_leaves_fastai_untouched():
    """Each module outside `PATCHING`, imported on its own, changes nothing in fastai's `Learner`, `Recorder` or `callback.schedule`;
    `learner`, imported after them, does. Through the package (`import lrfinder_cb.core`) Python runs `lrfinder_cb/__init__.py` first,
    and that patches, as `import lrfinder_cb` must"""
    pure = [m for m in MODULES if m not in PATCHING and (m != 'docrender' or importlib.util.find_spec('nbdev'))] # docs only: needs nbdev
    res = subprocess.run([sys.executable, '-c', _PROBE, str(PKG), json.dumps(pure + ['learner'])], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    changed = json.loads(res.stdout.splitlines()[-1])
    assert {m: c for m,c in changed.items() if m != 'learner' and c} == {}
    assert 'Learner.lr_find' in changed['learner'] and 'Recorder.plot_lr_find' in changed['learner']

def test_the_command_line_is_read_only_by_the_command():
    "No module decides what to do from `sys.argv` (issue 27: the package patches whatever the program); `cli.main` parses it"
    assert [m for m,p in MODULES.items() if 'sys.argv' in p.read_text()] == ['cli']
    assert sum('sys.argv' in l for l in _lines(MODULES['cli'])) == 1

def _code(path:Path) -> list:
    "The Python sources of a script, or of a notebook's code cells (without its `%` and `!` lines)"
    if path.suffix == '.py': return [path.read_text()]
    cells = json.loads(path.read_text())['cells']
    return ["\n".join(l for l in ''.join(c['source']).splitlines() if not l.lstrip().startswith(('%', '!')))
            for c in cells if c['cell_type'] == 'code']

def _module_names(tree) -> set:
    "Names a source binds to a module of the package (`import lrfinder_cb.shortfit as sf`, `from lrfinder_cb import rules`)"
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name.split('.')[0] for a in node.names if a.name.split('.')[0] == 'lrfinder_cb'}
        elif isinstance(node, ast.ImportFrom) and node.module == 'lrfinder_cb': names |= {a.asname or a.name for a in node.names}
    return names

def _assigned(source:str) -> list:
    "Attributes of the package's modules that `source` assigns (`sf.skipped_step_room = 8`, `lrfinder_cb.rules.x += 1`)"
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', SyntaxWarning) # a notebook's regex in a plain string is not ours to judge here
        warnings.simplefilter('ignore', DeprecationWarning)
        tree = ast.parse(source)
    names,found = _module_names(tree),[]
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        for t in targets:
            base = t.value if isinstance(t, (ast.Attribute, ast.Subscript)) else None
            while isinstance(base, ast.Attribute): base = base.value
            if isinstance(base, ast.Name) and base.id in names: found.append(ast.unparse(t))
    return found

def test_no_module_setting_is_assigned_from_outside_its_module():
    "Settings are arguments or class attributes (STYLE.md); nothing in the tests, benchmarks or notebooks assigns into our modules"
    sources = [*ROOT.glob('tests/*.py'), *ROOT.glob('benchmarks/*.py'), *ROOT.glob('nbs/*.ipynb'), *PKG.glob('*.py')]
    found = {str(p.relative_to(ROOT)): a for p in sources for s in _code(p) if (a := _assigned(s))}
    assert found == {}
    assert _assigned("import lrfinder_cb.shortfit as sf\nsf.skipped_step_room = 8") == ['sf.skipped_step_room'] # it can find one
    assert _assigned("from lrfinder_cb import rules\nrules.known_rules['x'] = 1") == ["rules.known_rules['x']"]
