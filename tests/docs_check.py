"""Process every notebook for the docs as `nbdev_docs` does before it hands them to Quarto, and fail on any error.

Usage: python tests/docs_check.py [--keep]   (dev stack only: nbdev 2 needs fastcore 1)

`nbdev_proc_nbs` insists on installing Quarto first, which these machines cannot, so this runs the steps of nbdev's
`_pre_docs` itself: `_quarto.yml`/`nbdev.yml` from settings.ini, the module index, the sidebar, then each notebook through
nbdev's own processors (`FilterDefaults`: it executes the import and `show_doc` cells, resolves links, hides what `#|hide`
hides), one fresh interpreter per notebook, as `proc_nbs` spawns them. The processed notebooks go to a temporary folder
(`--keep`: to `_proc/`), and the pages are checked for what a reader would notice: source links, figures on the pages
that need them, each symbol documented once, and no default printed as a memory address.
"""
import argparse, json, os, re, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
ADDRESS = re.compile(r'at 0x[0-9a-f]{6,}')
FIGURE_PAGES = ('index.ipynb', '01a_rules.ipynb', '02_plot.ipynb', '09_guide.ipynb', '10_experiments.ipynb', '12_trial.ipynb') # where a reader would rather look than read
MIXED = 'Found cells containing imports and other code'  # nbdev then runs the whole cell for the docs
ARGS_KWARGS = re.compile(r'```python\ndef \w+\(\n\s*\*args, \*\*kwargs\n\):') # a class whose signature says nothing
LONG_DEFAULT = re.compile(r'=-?\d*\.\d{9,}') # a default printed with more than 8 significant digits
INTERNAL_PAGES = ('03a_store.ipynb', '08_all.ipynb', '13_docrender.ipynb') # no public call of their own
MAX_EXPORTED_LINES = 60 # an exported cell a reader can hold, explained by the sentence before it


def prepare():
    "The steps of nbdev's `_pre_docs` before `proc_nbs`, without Quarto"
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
    import nbdev.doclinks
    refresh_quarto_yml()
    nbdev.doclinks._build_modidx()
    nbdev_sidebar.__wrapped__(path=NBS)


def process(src:Path, dst:Path) -> str:
    "Run nbdev's docs processing of `src` into `dst` in a fresh interpreter; the error output, or '' on success"
    code = ("import sys, os; from pathlib import Path; from nbdev.serve_drv import main; from nbdev.processors import FilterDefaults; "
            "os.chdir(Path(sys.argv[1]).parent); main((Path(sys.argv[1]), Path(sys.argv[2]), FilterDefaults))")
    out = subprocess.run([sys.executable, '-c', code, str(src), str(dst)], capture_output=True, text=True, env={**os.environ, 'MPLBACKEND': 'Agg'})
    if out.returncode: return out.stderr[-3000:]
    mixed = MIXED in out.stderr
    return f"nbdev warns: {out.stderr[out.stderr.index(MIXED):][:600]}" if mixed else ''


def doc_headings(dst:Path) -> list:
    "The names `show_doc` documented on a processed page (nbdev documents every exported symbol, and each explicit `show_doc` again)"
    outs = [o for c in json.loads(dst.read_text())['cells'] for o in c.get('outputs', [])]
    return [h for o in outs for h in re.findall(r'^#+ (\S+)', ''.join(o.get('data', {}).get('text/markdown', '')), re.M)]


def exports_api(nb:Path) -> bool:
    "Does the notebook export a public function or class (whose docs get a source link)?"
    cells = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
    return any(re.match(r'#\|\s*export\b', c) and re.search(r'^(def|class) [^_]', c, re.M) for c in cells)


def page_text(dst:Path) -> str:
    "Everything a processed notebook shows: markdown, and the text and HTML of its outputs"
    parts = []
    for cell in json.loads(dst.read_text())['cells']:
        parts.append(''.join(cell['source']))
        for out in cell.get('outputs', []):
            data = out.get('data', {})
            parts += [''.join(data.get(k, '')) for k in ('text/markdown', 'text/html', 'text/plain')] + [''.join(out.get('text', ''))]
    return '\n'.join(parts)


def exported_cell_lengths(nb:Path) -> list:
    cells = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
    return [len(c.splitlines()) for c in cells if re.match(r'#\|\s*export', c)]


def opens_with_call(nb:Path) -> bool:
    "Does the page show its public call first: a code block right after the title?"
    cells = json.loads(nb.read_text())['cells']
    shown = [c for c in cells if not ''.join(c['source']).lstrip().startswith(('#|hide', '#|export', '#|default_exp'))]
    titles = [i for i,c in enumerate(shown) if c['cell_type'] == 'markdown' and ''.join(c['source']).startswith('# ')]
    after = shown[titles[0] + 1] if titles and titles[0] + 1 < len(shown) else None
    return after is not None and after['cell_type'] == 'markdown' and ''.join(after['source']).lstrip().startswith('```')


def colon_before_hidden(nb:Path) -> list:
    "Hidden cells that a sentence ending in a colon introduces (the reader gets the colon and nothing after it)"
    cells = json.loads(nb.read_text())['cells']
    return [b['id'] for a,b in zip(cells, cells[1:]) if a['cell_type'] == 'markdown' and ''.join(a['source']).rstrip().endswith(':')
            and b['cell_type'] == 'code' and ''.join(b['source']).lstrip().startswith(('#|hide', '#|exporti'))]


def code_headings(nb:Path) -> list:
    "Headings with backticks, which nbdev turns into links to the symbol"
    cells = json.loads(nb.read_text())['cells']
    return [l for c in cells if c['cell_type'] == 'markdown' for l in ''.join(c['source']).splitlines() if re.match(r'#+ .*`', l)]


def home_page_problems(dst:Path) -> list:
    "The home page: the first code a reader meets is the usage, with its printed result and its figure"
    cells = [c for c in json.loads(dst.read_text())['cells'] if c['cell_type'] == 'code']
    shown = [c for c in cells if not ''.join(c['source']).lstrip().startswith('#|')]
    outs = [o for c in shown for o in c.get('outputs', [])]
    problems = []
    if not shown or 'from lrfinder_cb' not in ''.join(shown[0]['source']): problems.append("index: the first code shown is not the usage")
    if not any('image/png' in o.get('data', {}) for o in outs): problems.append("index: no figure")
    if not any('SuggestedLRs(' in ''.join(o.get('data', {}).get('text/plain', '')) for o in outs): problems.append("index: no printed result")
    return problems


def main(keep:bool=False) -> int:
    prepare()
    out_dir = ROOT/'_proc' if keep else Path(tempfile.mkdtemp())
    failed, pages = [], {}
    for src in sorted(NBS.glob('*.ipynb')):
        dst = out_dir/src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        error = process(src, dst)
        if error: failed.append(f"{src.name}: {error}")
        else:
            pages[src.name] = page_text(dst)
            headings = doc_headings(dst)
            twice = sorted({h for h in headings if headings.count(h) > 1})
            if twice: failed.append(f"{src.name}: documented more than once: {', '.join(twice)}")
    for name, text in pages.items():
        if ADDRESS.search(text): failed.append(f"{name}: a default renders as a memory address: {ADDRESS.search(text).group(0)}")
    for name, text in pages.items():
        if exports_api(NBS/name) and '[source]' not in text: failed.append(f"{name}: no source link (is the nbdev entry point declared?)")
    for name, text in pages.items():
        for what, pattern in (('a signature of (*args, **kwargs)', ARGS_KWARGS), ('a long default', LONG_DEFAULT)):
            if pattern.search(text) or 'VAR_POSITIONAL' in text: failed.append(f"{name}: {what}: {(pattern.search(text) or [''])[0]!r}")
    failed += [f"{nb.name}: an exported cell of {n} lines (at most {MAX_EXPORTED_LINES})" for nb in sorted(NBS.glob('*.ipynb'))
               for n in exported_cell_lengths(nb) if n > MAX_EXPORTED_LINES]
    failed += home_page_problems(out_dir/'index.ipynb')
    failed += [f"{nb.name}: a heading with code renders as a link: {h}" for nb in sorted(NBS.glob('*.ipynb')) for h in code_headings(nb)]
    failed += [f"{nb.name}: a sentence introduces hidden cell {cid}" for nb in sorted(NBS.glob('*.ipynb')) for cid in colon_before_hidden(nb)]
    failed += [f"{nb.name}: the page does not open with its public call" for nb in sorted(NBS.glob('*.ipynb'))
               if exports_api(nb) and nb.name not in INTERNAL_PAGES and not opens_with_call(nb)]
    for name in FIGURE_PAGES:
        if name in pages and 'image/png' not in (out_dir/name).read_text(): failed.append(f"{name}: the page has no figure")
    print(f"docs processing: {len(pages)} of {len(list(NBS.glob('*.ipynb')))} notebooks processed into {out_dir}")
    for f in failed: print(f"FAILED {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--keep', action='store_true', help="keep the processed notebooks in _proc/")
    sys.exit(main(parser.parse_args().keep))
