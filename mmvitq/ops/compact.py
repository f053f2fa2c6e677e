"""Memory-lean fake quantization for training: saved activations kept as integer codes, not float copies.

A fake-quantized activation normally costs two float tensors kept for backward: the quantizer's input
(for its own gradients) and its output (saved again by the linear or matmul that consumes it), twice the
memory of float training. Inside `compact_activations()` a static float32 quantizer keeps two bytes per
element instead (`CompactFakeQuantFunction`): its level and its rounding residual x / s - round(x / s) on a
1/250 grid. When a later op saves the quantizer's output (or a view of it), the saved-tensor hooks here keep
a reference to those levels and rebuild the output bit-exactly in the backward pass. Forward values and the
input and weight gradients are unchanged; only the LSQ scale gradient reads residuals to within 1/250.

    with compact_activations():
        loss = model(inputs)       # every static fake-quant point with a gradient goes compact
    loss.backward()                # the saved levels are expanded on the fly
"""
import threading
import weakref
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import torch
from torch import Tensor

_state = threading.local()


def compact_enabled() -> bool:
    """Whether the current thread runs inside `compact_activations()`."""
    return getattr(_state, 'outputs', None) is not None


@contextmanager
def compact_activations() -> Iterator[None]:
    """Save fake-quantized activations for backward as integer codes: about a quarter of their float bytes."""
    if compact_enabled():  # nested: the outer context already holds the hooks
        yield
        return
    _state.outputs = {}
    try:
        with torch.autograd.graph.saved_tensors_hooks(_pack, _unpack):
            yield
    finally:
        _state.outputs = None


def register_output(out: Tensor, rebuild: Callable[[], Tensor]) -> None:
    """Let ops that save `out` (or a view of it) keep `rebuild` instead, while `out` is alive and unmodified."""
    if compact_enabled():
        _state.outputs[_storage_key(out)] = (weakref.ref(out), out._version, rebuild, out.storage_offset())


class _SavedView:
    """A saved tensor that is a view of a registered output: its geometry and how to rebuild the output."""

    def __init__(self, rebuild: Callable[[], Tensor], like: Tensor, base_offset: int) -> None:
        self.rebuild = rebuild
        self.size, self.stride, self.offset = like.size(), like.stride(), like.storage_offset() - base_offset


def _storage_key(t: Tensor) -> Optional[int]:
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # tensors without a plain storage are saved as they are
        return None


def _pack(t: Tensor):
    entry = _state.outputs.get(_storage_key(t)) if compact_enabled() else None
    if entry is None:
        return t
    ref, version, rebuild, base_offset = entry
    out = ref()
    if out is None or out._version != version or t.dtype != out.dtype:
        return t
    return _SavedView(rebuild, t, base_offset)


def _unpack(saved):
    if isinstance(saved, _SavedView):
        return saved.rebuild().as_strided(saved.size, saved.stride, saved.offset)
    return saved
