"""CUDA kernels against the PyTorch reference, when a GPU is at hand (CI has none; the lent GPU machine runs it)."""
import pytest
import torch

from mmvitq.ops import backend, fake_quant_per_tensor, fake_quant_per_token, quant_range, reference

from .test_fake_quant import ACT, BITS, DTYPES, grads, granularities, rand, ranges

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')


def test_cuda_backend_is_compiled():
    assert backend('cuda') == 'compiled', 'a GPU is visible but mmvitq._ext has no CUDA kernels: make install CUDA=1'


@pytest.mark.parametrize('bits', BITS)
@pytest.mark.parametrize('dtype', DTYPES)
def test_cuda_kernels_match_reference(bits, dtype):
    x = rand((8, 197, 48), dtype)
    for qmin, qmax in ranges(bits):
        for name, (s, z), ours_fn, ref_fn in granularities(x, qmin, qmax):
            ours = grads(ours_fn, x.cuda(), s.cuda(), z.cuda())
            theirs = grads(ref_fn, x, s, z)
            torch.testing.assert_close(ours[0].cpu(), theirs[0], rtol=0, atol=0, msg=name)
            torch.testing.assert_close(ours[1].cpu(), theirs[1], msg=name)
            torch.testing.assert_close(ours[2].cpu(), theirs[2], rtol=1e-4, atol=1e-3, msg=name)
            torch.testing.assert_close(ours[3].cpu(), theirs[3], rtol=1e-4, atol=1e-3, msg=name)


@pytest.mark.parametrize('bits', BITS)
@pytest.mark.parametrize('symmetric', (True, False))
def test_cuda_per_token_matches_reference(bits, symmetric):
    x = rand(ACT)
    x[0, 0, 0], x[1, 1, 1] = float('nan'), float('inf')
    qmin, qmax = quant_range(bits, symmetric)
    ours = fake_quant_per_token(x.cuda(), qmin, qmax, symmetric).cpu()
    torch.testing.assert_close(ours, reference.fake_quant_per_token(x, qmin, qmax, symmetric), rtol=0, atol=0,
                               equal_nan=True)


def test_cuda_large_reduction_matches():
    x, s, z = rand((64, 197, 384)), torch.tensor([0.05]), torch.tensor([3.0])
    ours = grads(lambda x, s, z: fake_quant_per_tensor(x, s, z, 0, 15), x.cuda(), s.cuda(), z.cuda())
    theirs = grads(lambda x, s, z: reference.fake_quant(x, s, z, 1, x.numel(), 0, 15), x, s, z)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize('bits', BITS)
@pytest.mark.parametrize('symmetric', (True, False))
def test_cuda_compact_pack_matches_reference(bits, symmetric):
    """Compact fake quantization's CUDA pack / unpack against the PyTorch reference, bit for bit."""
    from mmvitq.ops.fake_quant import _ext
    qmin, qmax = quant_range(bits, symmetric)
    x = rand((8, 6, 197, 16)) * 2
    x.view(-1)[:3] = torch.tensor([float('nan'), float('inf'), -float('inf')])
    s, z = torch.rand(6) * 0.3 + 0.02, torch.full((6, ), 0.0 if symmetric else float(qmax // 2))
    args = (s, z, 6, 197 * 16, qmin, qmax)
    ours = _ext.fake_quant_pack(x.cuda(), s.cuda(), z.cuda(), *args[2:])
    theirs = reference.pack(x, *args)
    for a, b in zip(ours, theirs):
        assert torch.equal(a.cpu().nan_to_num(9), b.nan_to_num(9))
    for quantized in (True, False):
        a = _ext.fake_quant_unpack(ours[1], ours[2], s.cuda(), z.cuda(), *args[2:], quantized)
        assert torch.equal(a.cpu().nan_to_num(9), reference.unpack(theirs[1], theirs[2], *args, quantized).nan_to_num(9))
