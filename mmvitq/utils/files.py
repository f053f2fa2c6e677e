"""Files that are complete or absent: every artefact is written to a temporary name next to it, then renamed."""
import glob
import json
import os
import os.path as osp
from contextlib import contextmanager
from typing import Any, Iterator


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to `path` to write to; on success it is renamed onto `path` (atomic on one file
    system), on an error it is removed, so `path` never holds a half-written file. Temporary files of `path` left
    by killed processes are removed first."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    root, ext = osp.splitext(osp.basename(path))
    prefix = osp.join(directory, f'.{root}.tmp-')
    for stale in glob.glob(f'{glob.escape(prefix)}*{glob.escape(ext)}'):
        pid = stale[len(prefix):len(stale) - len(ext)]
        if pid.isdigit() and not pid_alive(int(pid)):
            os.remove(stale)
    tmp = f'{prefix}{os.getpid()}{ext}'  # same extension: savefig/imwrite pick the format
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def write_text(path: str, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        f.write(text)


def write_json(path: str, data: Any, **kwargs) -> None:
    """json.dump `data` to `path` atomically (kwargs go to json.dump, e.g. indent=2)."""
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump(data, f, **kwargs)
