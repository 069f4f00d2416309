"""An LSTM's inner life: every gate and state at every step, recorded from a trained layer.

:func:`record_lstm_gates` gives ``i_t, f_t, g_t, o_t, c_t, h_t`` of one layer as a :class:`GateRecord`,
computed with ``course_lib.reference.lstm_gates`` and the layer's own weights.
Shapes use the legend of :mod:`course_lib.reference.cells`: N batch, L length, H hidden size.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from course_lib.models import SequenceModel
from course_lib.reference import lstm_gates, weights_of

__all__ = ["GateRecord", "record_lstm_gates"]


class GateRecord(NamedTuple):
    """An LSTM layer's gates and states at every step, each (N, L, H)."""

    i: Tensor   # input gate
    f: Tensor   # forget gate
    g: Tensor   # candidate
    o: Tensor   # output gate
    c: Tensor   # cell state c_t
    h: Tensor   # hidden state h_t


@torch.no_grad()
def record_lstm_gates(model: SequenceModel | nn.LSTM, x: Tensor, *, layer: int = 0) -> GateRecord:
    """Run ``x`` through an LSTM and record every gate of layer ``layer`` at every step.

    ``model`` is an LSTM :class:`SequenceModel` (``x`` as its forward takes it) or an ``nn.LSTM``
    (``x`` in its own layout). The gates come from ``course_lib.reference.lstm_gates`` with the
    module's weights; ``c_t`` and ``h_t`` are the cell's update rule applied to them, so they
    agree with the module's own output.
    """
    if isinstance(model, SequenceModel):
        if model.kind != "lstm":
            raise ValueError(f"record_lstm_gates needs an LSTM, got kind={model.kind!r}")
        lstm_module, z, batch_first = model.core, model.embed_inputs(x), True
    elif isinstance(model, nn.LSTM):
        lstm_module, z, batch_first = model, x, model.batch_first
    else:
        raise TypeError(f"expected an LSTM SequenceModel or an nn.LSTM, got {type(model).__name__}")
    layers = weights_of(lstm_module)
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer must be in 0..{len(layers) - 1}, got {layer}")
    xs = z.transpose(0, 1) if batch_first else z                   # (L, N, H_in)
    for k in range(layer + 1):
        w = layers[k]
        h = c = xs.new_zeros(xs.shape[1], w.w_hh.shape[1])        # (N, H)
        rows = []
        for x_t in xs.unbind(0):
            i, f, g, o = lstm_gates(x_t, h, *w)                   # each (N, H)
            c = f * c + i * g
            h = o * torch.tanh(c)
            rows.append((i, f, g, o, c, h))
        xs = torch.stack([r[5] for r in rows])                    # (L, N, H): the next layer's input
    return GateRecord(*(torch.stack(seq, dim=1) for seq in zip(*rows)))  # each (N, L, H)

