"""Checkpoint files that never run code when loaded, are never half-written, and say what is wrong with them.

Every checkpoint loads with torch.load(weights_only=True). A Runner checkpoint (training state: message hub,
optimizer, RNG states) additionally needs the data-only classes of `RUNNER_GLOBALS` (mmengine's
HistoryBuffer, numpy arrays, dtypes and scalars), allowed only while a Runner checkpoint is read. mmengine
pickles a HistoryBuffer with references to its statistics methods, which need `getattr` to unpickle;
`portable_message_hub` stores them without, so the checkpoints we write need no `getattr`. Loading with
weights_only=False is an explicit opt-in (`unsafe=True`), warned with the file's name.
"""
import os.path as osp
import pickle
import warnings
import zipfile
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class PortableHistoryBuffer(HistoryBuffer):
    """A HistoryBuffer pickled without its statistics methods (mmengine's own defaults come back on load), so a
    checkpoint holding it unpickles with weights_only=True and no `getattr`."""

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}

    @classmethod
    def of(cls, buffer: HistoryBuffer) -> 'PortableHistoryBuffer':
        portable = cls.__new__(cls)
        portable.__dict__.update(buffer.__getstate__())
        portable.__dict__.pop('statistics_methods', None)
        return portable


def portable_message_hub(state: dict) -> dict:
    """A message hub state_dict whose HistoryBuffers are `PortableHistoryBuffer`s."""
    scalars = {k: PortableHistoryBuffer.of(v) if isinstance(v, HistoryBuffer) else v
               for k, v in state.get('log_scalars', {}).items()}
    return {**state, 'log_scalars': type(state.get('log_scalars', {}))(scalars)}


def _numpy_globals() -> list:
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType')]
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtypes]


#: What a Runner checkpoint of ours needs beyond tensors: data-only classes, nothing that can run code.
RUNNER_GLOBALS = [HistoryBuffer, PortableHistoryBuffer, *_numpy_globals()]


@contextmanager
def runner_checkpoint_globals() -> Iterator[None]:
    """Inside, weights_only loading also accepts `RUNNER_GLOBALS` (a Runner checkpoint's training state)."""
    with torch.serialization.safe_globals(RUNNER_GLOBALS):
        yield


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, truncated, not a checkpoint, or refused as unsafe."""


def is_url(path: str) -> bool:
    """Whether `path` names a remote checkpoint (read by mmengine's loader) rather than a local file."""
    return '://' in path


def check_checkpoint_arg(field: str, path: object) -> None:
    """Before any work: raise naming the config `field` unless `path` is a URL or an existing local file."""
    if not isinstance(path, str) or not path:
        raise ValueError(f'{field} must be a checkpoint path or URL, got {path!r}')
    if not is_url(path) and not osp.isfile(path):
        raise FileNotFoundError(f'{field}: no such file {path!r} (train the float model first, or point it at its '
                                'checkpoint)')


def check_checkpoint_file(path: str) -> None:
    """Raise CheckpointError naming `path`, its size and what was expected unless it is a complete torch.save file."""
    if not osp.isfile(path):
        raise CheckpointError(f'checkpoint {path!r}: no such file')
    size = osp.getsize(path)
    expected = 'a file written by torch.save (a zip archive with data.pkl)'
    if size == 0:
        raise CheckpointError(f'checkpoint {path!r} is empty (0 bytes); expected {expected}')
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f'checkpoint {path!r} ({size} bytes) is not a complete checkpoint: truncated, or not '
                              f'a checkpoint at all; expected {expected}')
    with zipfile.ZipFile(path) as archive:
        if not any(name.endswith('/data.pkl') or name == 'data.pkl' for name in archive.namelist()):
            raise CheckpointError(f'checkpoint {path!r} ({size} bytes) is a zip archive without data.pkl; '
                                  f'expected {expected}')


def load_checkpoint_file(path: str, map_location: Any = 'cpu', unsafe: bool = False) -> Any:
    """Load a checkpoint (local file or URL) with weights_only=True; `unsafe=True` opts into full unpickling.

    A Runner checkpoint (training state) is accepted through `RUNNER_GLOBALS`. A file that is not a complete
    checkpoint, or one whose unpickling would need anything else (code), raises CheckpointError naming it.
    """
    if is_url(path):
        if unsafe:
            raise CheckpointError(f'checkpoint {path!r}: unsafe loading is only offered for local files')
        with runner_checkpoint_globals():
            return CheckpointLoader.load_checkpoint(path, map_location=map_location, logger='silent')
    path = osp.expanduser(path)
    check_checkpoint_file(path)
    if unsafe:
        warnings.warn(f'loading {path!r} with weights_only=False (opted in): unpickling it can run any code it '
                      'holds; only do this for files you made or trust')
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        with runner_checkpoint_globals():
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001  (torch raises UnpicklingError, RuntimeError or EOFError)
        if isinstance(e, pickle.UnpicklingError) or 'Weights only load failed' in str(e):
            raise CheckpointError(
                f'checkpoint {path!r} was refused: loading it would need more than tensors and training state '
                f'(objects that can run code). If you made it or trust it, opt in to full unpickling '
                f'(tools: --unsafe-load; config: unsafe_load=True). torch said: {str(e).splitlines()[0]}') from None
        raise CheckpointError(f'checkpoint {path!r} ({osp.getsize(path)} bytes) cannot be read: {e}') from None
