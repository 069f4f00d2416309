"""Fast RNN, LSTM and GRU layers: the tricks production kernels start from, in plain PyTorch.

:func:`course_lib.reference.lstm` does eight small matmuls per step. Here:

1. The input projection ``x_t W_ih^T + b_ih + b_hh`` does not depend on ``h``, so it is
   computed for all L steps at once: one (L*N, H_in) x (H_in, 4H) matmul before the loop.
2. The four gates share one recurrent matmul ``h_{t-1} W_hh^T``: (N, H) x (H, 4H) per step,
   then the (N, 4H) result is split into i, f, g, o.

What is left in the loop is one matmul and a handful of elementwise ops per step, and in a
Python loop every op costs a few microseconds of dispatch (and one more autograd node to
walk back through), whatever its size. So the loops below also count their ops:

- the LSTM's weights are reordered once to gates (i, f, o, g), so that the three sigmoid
  gates are one contiguous slice: one ``sigmoid`` and one ``tanh`` per step instead of four;
- ``torch.addmm`` adds the projected input (or a bias) inside the matmul;
- ``torch.addcmul`` (``a + b * c``) and ``torch.lerp`` (``a + w (b - a)``) fuse two ops into one.

And one more when no gradient is wanted:

3. Without autograd (under ``torch.no_grad()``, or when nothing requires a gradient) nothing has to
   keep each step's intermediate tensors, so the inference loops allocate their buffers once and
   write every step into them in place (``out=``, ``sigmoid_``, ``mul_``): no allocation per op.
   This is what takes the forward pass from about 1.6x PyTorch's native C++ loop down to it at
   batch 1 x length 1000 (``benchmarks/reference_speed.py``).

Fused kernels (oneDNN on CPU, cuDNN on GPU) go further: they run the whole step, elementwise
ops included, as one kernel with no Python between steps. Each function has the same contract
as its readable twin in :mod:`course_lib.reference.layers` (``rnn``, ``lstm``, ``gru``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torch.autograd import forward_ad

from .layers import LayerWeights, _from_time_major, _to_time_major

__all__ = ["fast_rnn", "fast_lstm", "fast_gru"]


def _add_biases(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None or b is None:
        return b if a is None else a
    return a + b


def _input_projection(xs: Tensor, w_ih: Tensor, bias: Tensor | None) -> Tensor:
    """Trick 1: ``x_t W_ih^T + bias`` for every step at once, (L, N, H_in) -> (L, N, G*H)."""
    L, N = xs.shape[:2]
    x2d = xs.reshape(L * N, -1)                                          # (L*N, H_in)
    proj = x2d @ w_ih.T if bias is None else torch.addmm(bias, x2d, w_ih.T)
    return proj.view(L, N, -1)


def _needs_grad(*tensors) -> bool:
    """Must this call take the recording loop? Yes when autograd records it (grad mode on and some input
    or weight requires a gradient), under a torch.func transform (vmap, grad, jvp), or with a dual
    tensor of forward-mode AD: none of them supports the in-place loop's ``out=`` operations."""
    present = [t for t in tensors if t is not None]
    return ((torch.is_grad_enabled() and any(t.requires_grad for t in present))
            or torch._C._functorch.peek_interpreter_stack() is not None
            or any(forward_ad.unpack_dual(t).tangent is not None for t in present))


def _layer_states(hx, k: int, N: int, H: int, xs: Tensor, unbatched: bool, layers: int):
    """Layer k's initial state, (N, H): zeros, or ``hx[k]`` once hx is checked to be (layers, N, H)."""
    if hx is None:
        return xs.new_zeros(N, H)
    want = (layers, H) if unbatched else (layers, N, H)
    if tuple(hx.shape) != want:
        raise ValueError(f"expected an initial state of shape {want} (layers{'' if unbatched else ', batch'}, "
                         f"hidden), got {tuple(hx.shape)}")
    return hx[k].unsqueeze(0) if unbatched else hx[k]


def _single_state_layers(layer_loop, input, hx, weights, batch_first):
    """Driver for the RNN and GRU, whose state is just h: ``layer_loop(xs, h0, w) -> (outputs, h_L)``."""
    xs, unbatched = _to_time_major(input, batch_first)
    h_n = []
    for k, w in enumerate(weights):
        h0 = _layer_states(hx, k, xs.shape[1], w.w_hh.shape[1], xs, unbatched, len(weights))
        xs, h = layer_loop(xs, h0, w)
        h_n.append(h)
    h_n = torch.stack(h_n)
    return _from_time_major(xs, batch_first, unbatched), (h_n.squeeze(1) if unbatched else h_n)


def _rnn_loop(xs: Tensor, h: Tensor, w: LayerWeights, act, act_) -> tuple[Tensor, Tensor]:
    """h_t = act(x_t W_ih^T + b_ih + b_hh + h_{t-1} W_hh^T): one addmm and one activation per step."""
    x_proj = _input_projection(xs, w.w_ih, _add_biases(w.b_ih, w.b_hh))   # (L, N, H): both biases hoisted
    w_hh_t = w.w_hh.T                                                    # (H, H)
    if not _needs_grad(xs, h, *w):                                      # trick 3: in place, no allocation
        out = x_proj.new_empty(x_proj.shape)                             # (L, N, H)
        for xp_t, h_t in zip(x_proj.unbind(0), out.unbind(0)):
            h = act_(torch.addmm(xp_t, h, w_hh_t, out=h_t))                 # act_: tanh_ or relu_, in place
        return out, h
    outs = []
    for xp_t in x_proj.unbind(0):                                        # (N, H)
        h = act(torch.addmm(xp_t, h, w_hh_t))
        outs.append(h)
    return torch.stack(outs), h


def _gru_loop(xs: Tensor, h: Tensor, w: LayerWeights) -> tuple[Tensor, Tensor]:
    """r, z = sigma(...), n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)), h' = (1 - z) n + z h."""
    H = w.w_hh.shape[1]
    x_proj = _input_projection(xs, w.w_ih, w.b_ih)                       # (L, N, 3H)
    w_hh_t = w.w_hh.T                                                    # (H, 3H)
    xs_rz, xs_n = x_proj.split([2 * H, H], dim=2)                      # (L, N, 2H), (L, N, H): sliced once
    if not _needs_grad(xs, h, *w):
        return _gru_loop_inference(xs_rz, xs_n, h, w_hh_t, w.b_hh)
    outs = []
    for x_rz, x_n in zip(xs_rz.unbind(0), xs_n.unbind(0)):               # (N, 2H), (N, H)
        hh = h @ w_hh_t if w.b_hh is None else torch.addmm(w.b_hh, h, w_hh_t)   # (N, 3H): one matmul
        h_rz, h_n = hh.split([2 * H, H], dim=1)                          # (N, 2H), (N, H)
        r, z = torch.sigmoid(x_rz + h_rz).chunk(2, dim=1)                # (N, H) each: one sigmoid
        n = torch.tanh(torch.addcmul(x_n, r, h_n))                       # reset gate after the matmul
        h = torch.lerp(n, h, z)                                          # = n + z (h - n) = (1 - z) n + z h
        outs.append(h)
    return torch.stack(outs), h


def _gru_loop_inference(xs_rz: Tensor, xs_n: Tensor, h: Tensor, w_hh_t: Tensor,
                        b_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    """The GRU step without autograd (trick 3): the same equations, every buffer allocated once."""
    L, N, H = xs_n.shape
    out = xs_n.new_empty(L, N, H)
    hh = xs_n.new_empty(N, 3 * H)                                        # h W_hh^T + b_hh
    h_rz, h_n = hh.split([2 * H, H], dim=1)
    rz = xs_n.new_empty(N, 2 * H)
    r, z = rz.chunk(2, dim=1)
    n = xs_n.new_empty(N, H)
    for x_rz, x_n, h_t in zip(xs_rz.unbind(0), xs_n.unbind(0), out.unbind(0)):
        if b_hh is None:
            torch.mm(h, w_hh_t, out=hh)
        else:
            torch.addmm(b_hh, h, w_hh_t, out=hh)
        torch.add(x_rz, h_rz, out=rz).sigmoid_()                          # r, z
        torch.addcmul(x_n, r, h_n, out=n).tanh_()                        # n
        h = torch.lerp(n, h, z, out=h_t)                                 # (1 - z) n + z h
    return out, h


def fast_rnn(input: Tensor, hx: Tensor | None, weights: Sequence[LayerWeights], *,
             batch_first: bool = False, nonlinearity: str = "tanh") -> tuple[Tensor, Tensor]:
    """A stacked Elman RNN like ``nn.RNN``, with the input projection hoisted out of the loop."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity should be 'tanh' or 'relu', got {nonlinearity!r}")
    act, act_ = (torch.tanh, torch.tanh_) if nonlinearity == "tanh" else (torch.relu, torch.relu_)
    return _single_state_layers(lambda xs, h, w: _rnn_loop(xs, h, w, act, act_), input, hx, weights, batch_first)


def fast_gru(input: Tensor, hx: Tensor | None, weights: Sequence[LayerWeights], *,
             batch_first: bool = False) -> tuple[Tensor, Tensor]:
    """A stacked GRU like ``nn.GRU``, input projection hoisted, three gates in one recurrent matmul."""
    return _single_state_layers(_gru_loop, input, hx, weights, batch_first)


def _ifog(t: Tensor | None) -> Tensor | None:
    """Reorder PyTorch's stacked LSTM gates (i, f, g, o) to (i, f, o, g) along dim 0: sigmoids first."""
    if t is None:
        return None
    i, f, g, o = t.chunk(4, dim=0)
    return torch.cat([i, f, o, g])


def _lstm_loop_inference(x_proj: Tensor, h: Tensor, c: Tensor, w_hh_t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The LSTM step without autograd (trick 3): gates, cell and output written into buffers made once."""
    L, N, H4 = x_proj.shape
    H = H4 // 4
    out = x_proj.new_empty(L, N, H)
    gates = x_proj.new_empty(N, H4)                            # (N, 4H), gates i, f, o, g
    sig, g = gates.split([3 * H, H], dim=1)
    i, f, o = sig.chunk(3, dim=1)
    c = c.clone()                                              # updated in place: never the caller's tensor
    tanh_c = x_proj.new_empty(N, H)
    for xp_t, h_t in zip(x_proj.unbind(0), out.unbind(0)):
        torch.addmm(xp_t, h, w_hh_t, out=gates)
        sig.sigmoid_()
        g.tanh_()
        c.mul_(f).addcmul_(i, g)                               # c_t = f * c_{t-1} + i * g
        h = torch.mul(o, torch.tanh(c, out=tanh_c), out=h_t)   # h_t = o * tanh(c_t)
    return out, h, c


def fast_lstm(input: Tensor, hx: tuple[Tensor, Tensor] | None, weights: Sequence[LayerWeights], *,
              batch_first: bool = False) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """A stacked LSTM like ``nn.LSTM``, with the input projection hoisted and the gates fused."""
    xs, unbatched = _to_time_major(input, batch_first)        # (L, N, H_in)
    L, N = xs.shape[:2]
    h_n, c_n = [], []
    for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
        H = w_hh.shape[1]
        h = _layer_states(None if hx is None else hx[0], k, N, H, xs, unbatched, len(weights))
        c = _layer_states(None if hx is None else hx[1], k, N, H, xs, unbatched, len(weights))
        bias = _ifog(_add_biases(b_ih, b_hh))                  # (4H,), both biases hoisted
        x_proj = _input_projection(xs, _ifog(w_ih), bias)      # (L, N, 4H): trick 1, gates i, f, o, g
        w_hh_t = _ifog(w_hh).T                                 # (H, 4H)
        if not _needs_grad(xs, h, c, w_ih, w_hh, b_ih, b_hh):
            xs, h, c = _lstm_loop_inference(x_proj, h, c, w_hh_t)
            h_n.append(h)
            c_n.append(c)
            continue
        outs = []
        for xp_t in x_proj.unbind(0):                          # (N, 4H)
            gates = torch.addmm(xp_t, h, w_hh_t)              # (N, 4H): trick 2
            i, f, o = torch.sigmoid(gates[:, :3 * H]).chunk(3, dim=1)   # (N, H) each: one sigmoid
            g = torch.tanh(gates[:, 3 * H:])                   # (N, H)
            c = torch.addcmul(f * c, i, g)                     # c_t = f * c_{t-1} + i * g
            h = o * torch.tanh(c)
            outs.append(h)
        xs = torch.stack(outs)                                # (L, N, H)
        h_n.append(h)
        c_n.append(c)
    h_n, c_n = torch.stack(h_n), torch.stack(c_n)             # (layers, N, H)
    if unbatched:
        h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
    return _from_time_major(xs, batch_first, unbatched), (h_n, c_n)
