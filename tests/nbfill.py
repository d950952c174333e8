"""Execute notebooks headless, as a reader's Jupyter would, and keep the outputs a reader sees: the docs pages show them.

Usage: python tests/nbfill.py nbs/index.ipynb nbs/09_guide.ipynb ...   (then `nbdev_clean`)

Each notebook runs in a fresh kernel (nbclient, the inline backend: the figures users get in their own notebooks). Outputs are kept
in visible cells only (none in `#|hide` or `#|export` cells, no stderr), and each PNG is stored with 256 colours: a figure of
lines and shading loses nothing a reader sees, and the notebooks stay small (tests/test_packaging.py: under 80 kB an image).
"""
import base64, io, os, sys
import nbformat
from nbclient import NotebookClient
from PIL import Image


def small_png(data:str) -> str:
    "The PNG `data` (base64) with 256 colours"
    out = io.BytesIO()
    Image.open(io.BytesIO(base64.b64decode(data))).convert('RGB').quantize(colors=256).save(out, 'PNG', optimize=True)
    return base64.b64encode(out.getvalue()).decode()


def keep(cell) -> list:
    "The outputs of `cell` a reader sees"
    src = cell.source.lstrip()
    if src.startswith(('#|hide', '#|export')) or 'nbdev_export()' in src: return []
    outs = [o for o in cell.outputs if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
    for o in outs:
        if 'image/png' in o.get('data', {}): o['data']['image/png'] = small_png(o['data']['image/png'])
    return outs


def fill(path:str):
    nb = nbformat.read(path, as_version=4)
    os.environ.pop('MPLBACKEND', None) # the kernel inherits the environment: its own inline backend, not Agg
    NotebookClient(nb, timeout=1200, kernel_name='python3', resources={'metadata': {'path': os.path.dirname(path) or '.'}}).execute()
    for cell in nb.cells:
        if cell.cell_type == 'code': cell.outputs = keep(cell)
    nbformat.write(nb, path)


if __name__ == '__main__':
    for p in sys.argv[1:]:
        fill(p)
        print(f"{p}: executed, outputs kept")
