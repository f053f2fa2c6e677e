"""The documentation works as written: docs/get_started.md runs, and every relative link points at a file.

Convention for docs/get_started.md (say it there too):
- blocks fenced ```bash and ```python are executed by `test_get_started_runs`, in page order, from the
  repository root, with the interpreter's bin directory (the virtual environment) first on PATH: bash blocks
  through `bash -e -c`, python blocks through `sys.executable -c`;
- blocks fenced ```sh are shown only (installing, hour-long training runs);
- ```console and ```text blocks are output; they do not run either.
The page's own data block (`python tools/data/prepare.py --out data`, idempotent, about 10 s) prepares data/ on a
fresh clone; the commands write under work_dirs/get_started/ (git-ignored), which the test empties first.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GET_STARTED = ROOT / 'docs' / 'get_started.md'
RUN = ('bash', 'python')
SHOWN = ('sh', 'console', 'text')
FENCE = re.compile(r'^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$', re.MULTILINE | re.DOTALL)
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')


def code_blocks(path: Path) -> list[tuple[str, str, int]]:
    """(language, code, line number) of every fenced block of a Markdown file, in order."""
    text = path.read_text()
    return [(m.group(1), m.group(2), text.count('\n', 0, m.start()) + 1) for m in FENCE.finditer(text)]


def run_block(lang: str, code: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get('PATH', '')]),
               PYTHONUNBUFFERED='1', MPLBACKEND='Agg')
    cmd = ['bash', '-e', '-c', code] if lang == 'bash' else [sys.executable, '-c', code]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_get_started_blocks_are_labelled():
    """Every block says whether it runs (bash, python) or is only shown, so nothing is skipped by accident."""
    blocks = code_blocks(GET_STARTED)
    assert sum(lang in RUN for lang, _, _ in blocks) >= 5
    unlabelled = [line for lang, _, line in blocks if lang not in RUN + SHOWN]
    assert not unlabelled, f'{GET_STARTED}: fence blocks at lines {unlabelled} need one of {RUN + SHOWN}'


def test_get_started_runs():
    """Execute the page's bash and python blocks in order; a failing block fails with its text and output."""
    shutil.rmtree(ROOT / 'work_dirs' / 'get_started', ignore_errors=True)
    timings = []
    for lang, code, line in code_blocks(GET_STARTED):
        if lang not in RUN:
            continue
        start = time.perf_counter()
        proc = run_block(lang, code)
        timings.append(f'line {line}: {time.perf_counter() - start:.0f} s')
        if proc.returncode != 0:
            pytest.fail(f'docs/get_started.md, the {lang} block at line {line} failed (exit {proc.returncode}):\n'
                        f'{code}\n--- stdout (end) ---\n{proc.stdout[-4000:]}\n--- stderr (end) ---\n'
                        f'{proc.stderr[-4000:]}', pytrace=False)
    print('get_started blocks:', ', '.join(timings))


def test_a_failing_block_fails():
    """The runner sees a failure inside a block (bash -e stops at the first failing command)."""
    assert run_block('bash', 'true\nfalse\ntrue').returncode != 0
    assert run_block('python', 'raise SystemExit(3)').returncode == 3
    assert run_block('bash', 'python -c "import mmvitq"').returncode == 0  # the environment's python comes first


def markdown_files() -> list[Path]:
    return [ROOT / 'README.md', *sorted((ROOT / 'docs').rglob('*.md')), *sorted(ROOT.glob('configs/*/README.md'))]


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r'^#+\s+(.*?)\s*$', FENCE.sub('', path.read_text()), re.MULTILINE)
    return {re.sub(r'[^\w\- ]', '', h.lower()).replace(' ', '-') for h in headings}


def test_relative_links_exist():
    """Every relative link and image in README.md, docs/ and configs/*/README.md points at a file (and a heading)."""
    broken = []
    for path in markdown_files():
        text = FENCE.sub('', path.read_text())  # links inside code blocks are not links
        for target in LINK.findall(text):
            if re.match(r'^[a-z][a-z0-9+.-]*:', target):
                continue  # http(s), mailto
            file, _, anchor = target.partition('#')
            linked = (path.parent / file) if file else path
            if not linked.exists() or (anchor and linked.suffix == '.md' and anchor not in anchors(linked)):
                broken.append(f'{path.relative_to(ROOT)}: {target}')
    assert not broken, 'broken relative links:\n' + '\n'.join(broken)


def test_readme_is_short():
    lines = (ROOT / 'README.md').read_text().splitlines()
    assert len(lines) <= 150, f'README.md has {len(lines)} lines; details belong in docs/'
