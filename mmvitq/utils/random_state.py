"""The global random generators' states (torch CPU and CUDA, numpy, Python), to save and put back as one."""
import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch


def get_random_state() -> dict:
    """The torch (CPU, and CUDA when present), numpy and Python generator states."""
    state = dict(torch=torch.get_rng_state(), numpy=np.random.get_state(), python=random.getstate())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    """Put back a `get_random_state()`; CUDA states only onto as many devices as they were taken from."""
    torch.set_rng_state(state['torch'])
    np.random.set_state(state['numpy'])
    random.setstate(state['python'])
    if 'cuda' in state and torch.cuda.is_available() and len(state['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state['cuda'])


@contextmanager
def preserved_random_state() -> Iterator[None]:
    """Whatever the block draws, the global generators leave it as they entered."""
    state = get_random_state()
    try:
        yield
    finally:
        set_random_state(state)
