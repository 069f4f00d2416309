r"""Move LSTM and GRU weights between PyTorch, the reference layout and Keras 3.

The reference layout (:class:`course_lib.reference.LayerWeights`) *is* PyTorch's, so
``weights_of(module)`` already reads a torch module into it. This module adds the Keras
side and the way back into torch::

    torch module --weights_of--> [LayerWeights, ...] --reference_to_keras--> Keras layers
    torch module <--load_reference_into_torch-- [LayerWeights, ...] <--keras_to_reference-- Keras layers

    torch_to_keras(module, layers)   # both steps at once, one Keras layer per torch layer
    keras_to_torch(layers, module)   # (these two also copy nn.Linear <-> Dense, nn.Embedding <-> Embedding)

Where each gate lives (H = hidden size = Keras ``units``, H_in = input size):

==========  ====================================  =================================================
parameter   PyTorch / reference                   Keras 3
==========  ====================================  =================================================
LSTM input  ``w_ih`` (4H, H_in), rows i|f|g|o     ``kernel`` (H_in, 4H), columns i|f|c|o
LSTM rec.   ``w_hh`` (4H, H), rows i|f|g|o        ``recurrent_kernel`` (H, 4H), columns i|f|c|o
LSTM bias   ``b_ih``, ``b_hh`` (4H,) each         ``bias`` (4H,) = ``b_ih + b_hh``
GRU input   ``w_ih`` (3H, H_in), rows r|z|n       ``kernel`` (H_in, 3H), columns z|r|h
GRU rec.    ``w_hh`` (3H, H), rows r|z|n          ``recurrent_kernel`` (H, 3H), columns z|r|h
GRU bias    ``b_ih``, ``b_hh`` (3H,) each, r|z|n  ``bias`` (2, 3H): input row, recurrent row; z|r|h
==========  ====================================  =================================================

So a Keras matrix is the transpose of the torch one; the LSTM gates are in the same order
(Keras calls the candidate ``c``, torch ``g``); the GRU's first two blocks are swapped
(Keras ``z, r``, torch ``r, z``; a swap is its own inverse, so one permutation serves
both directions). An LSTM only ever uses ``b_ih + b_hh``, so Keras keeps one bias; going
back, all of it goes into ``b_ih`` and ``b_hh`` is zero. Both libraries mix the GRU state
the same way, ``h_t = z_t * h_{t-1} + (1 - z_t) * n_t``.

What cannot be converted, and raises ``ValueError``:

- a Keras activation other than ``tanh`` or a recurrent activation other than ``sigmoid``
  (``nn.LSTM`` and ``nn.GRU`` have these two built in);
- a Keras GRU with ``reset_after=False``, the published Cho et al. (2014) form, which resets ``h_{t-1}``
  *before* the recurrent matrix, ``tanh(W x + U (r * h))``; torch resets after it,
  ``tanh(W x + b + r * (U h + b_hn))``, and no choice of torch weights turns one into the other;
- ``go_backwards=True`` (torch has no such option for a unidirectional layer).

Keras runs on its PyTorch backend here; ``keras`` is imported only when a function needs it.
Conversion moves parameters only. Running the two models is up to you; remember that Keras
is always batch-first (``batch_first=True`` in torch) and returns ``output`` or, with
``return_state=True``, ``[output, h_n, c_n]`` where torch returns ``(output, (h_n, c_n))``.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from .reference import LayerWeights, weights_of

__all__ = [
    "keras_to_reference",
    "reference_to_keras",
    "load_reference_into_torch",
    "torch_to_keras",
    "keras_to_torch",
]

_GATES = {"lstm": 4, "gru": 3}
_NAMES = {"lstm": "LSTM", "gru": "GRU"}


def _keras():
    """Import Keras on the PyTorch backend (the backend must be chosen before the first import)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    if keras.backend.backend() != "torch":
        raise RuntimeError(
            f"course_lib.convert needs Keras on the PyTorch backend, but Keras was imported with "
            f"backend {keras.backend.backend()!r}; set KERAS_BACKEND=torch before importing keras.")
    return keras


def _keras_cell(layer: Any) -> tuple[str, Any]:
    """Return ``(kind, cell)`` for a Keras LSTM/GRU layer or cell, or raise if torch cannot express it."""
    keras = _keras()
    cell = getattr(layer, "cell", layer)
    if isinstance(cell, keras.layers.LSTMCell):
        kind = "lstm"
    elif isinstance(cell, keras.layers.GRUCell):
        kind = "gru"
    else:
        raise TypeError(
            f"expected a Keras LSTM or GRU layer (or an LSTMCell/GRUCell), got {type(layer).__name__}")
    name = _NAMES[kind]
    if cell.activation is not keras.activations.tanh:
        where = "the candidate and the cell output" if kind == "lstm" else "the candidate"
        raise ValueError(
            f"this Keras {name} uses activation={_act_name(cell.activation)!r}, but nn.{name} always uses "
            f"tanh for {where}, so no PyTorch {name} computes the same function; "
            "build it with activation='tanh'.")
    if cell.recurrent_activation is not keras.activations.sigmoid:
        raise ValueError(
            f"this Keras {name} uses recurrent_activation={_act_name(cell.recurrent_activation)!r}, but "
            f"nn.{name}'s gates always use the sigmoid; build it with recurrent_activation='sigmoid'.")
    if kind == "gru" and not cell.reset_after:
        raise ValueError(
            "this Keras GRU has reset_after=False (the published Cho et al. 2014 form, tanh(W x + U (r * h))), but "
            "nn.GRU applies the reset gate after the recurrent matrix, tanh(W x + b + r * (U h + b_hn)), "
            "and no PyTorch weights turn one into the other; build the Keras GRU with reset_after=True.")
    if getattr(layer, "go_backwards", False):
        raise ValueError(
            f"this Keras {name} has go_backwards=True, which a unidirectional nn.{name} cannot do; "
            "build it with go_backwards=False and reverse the sequence yourself if you need to.")
    return kind, cell


def _act_name(fn: Any) -> str:
    return getattr(fn, "__name__", repr(fn))


def _torch_kind(module: nn.Module) -> str:
    if isinstance(module, (nn.LSTM, nn.LSTMCell)):
        return "lstm"
    if isinstance(module, (nn.GRU, nn.GRUCell)):
        return "gru"
    raise TypeError(
        f"expected an nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.Linear or nn.Embedding, "
        f"got {type(module).__name__}")


def _swap_first_two(t: Tensor, H: int, dim: int) -> Tensor:
    """Swap blocks 0 and 1 of size H along ``dim``: GRU z|r|h <-> r|z|n (its own inverse)."""
    a, b, c = t.split(H, dim=dim)
    return torch.cat([b, a, c], dim=dim)


def _to_torch(variable: Any) -> Tensor:
    """A Keras variable as a fresh CPU torch tensor (a copy, detached from Keras)."""
    return variable.value.detach().cpu().clone()  # on the torch backend, .value is a torch tensor


def _assign(variable: Any, value: Tensor) -> None:
    variable.assign(value.detach().to(getattr(torch, variable.dtype)))


def keras_to_reference(layer: Any) -> LayerWeights:
    """The parameters of one built Keras ``LSTM``/``GRU`` layer (or cell) in PyTorch's layout.

    Returns ``LayerWeights(w_ih, w_hh, b_ih, b_hh)`` with fresh tensors: ``w_ih`` (G*H, H_in),
    ``w_hh`` (G*H, H), biases (G*H,) or None when the layer has ``use_bias=False``;
    G = 4 for the LSTM, 3 for the GRU. An LSTM's single Keras bias becomes ``b_ih``, and
    ``b_hh`` is zeros. Feed a list of these to :func:`course_lib.reference.lstm` or ``gru``, or
    to :func:`load_reference_into_torch`.
    """
    kind, cell = _keras_cell(layer)
    if not cell.built:
        raise ValueError(
            "this Keras layer has no weights yet; call it on an input (or build it) before converting.")
    H = cell.units
    kernel = _to_torch(cell.kernel)                        # (H_in, G*H)
    recurrent = _to_torch(cell.recurrent_kernel)           # (H, G*H)
    bias = _to_torch(cell.bias) if cell.use_bias else None  # LSTM (4H,); GRU (2, 3H)
    if kind == "lstm":
        w_ih, w_hh = kernel.T, recurrent.T                 # (4H, H_in), (4H, H): same order i|f|g|o
        b_ih, b_hh = (None, None) if bias is None else (bias, torch.zeros_like(bias))
    else:
        w_ih = _swap_first_two(kernel, H, dim=1).T         # (3H, H_in): z|r|h -> r|z|n
        w_hh = _swap_first_two(recurrent, H, dim=1).T      # (3H, H)
        b_ih, b_hh = (None, None) if bias is None else (
            _swap_first_two(bias[0], H, dim=0), _swap_first_two(bias[1], H, dim=0))  # (3H,) each
    return LayerWeights(w_ih.contiguous(), w_hh.contiguous(), b_ih, b_hh)


def reference_to_keras(weights: LayerWeights, layer: Any) -> None:
    """Copy one layer's reference (PyTorch-layout) weights into a Keras ``LSTM``/``GRU`` layer or cell.

    An unbuilt layer is built for input size ``H_in = w_ih.shape[1]``. The layer's ``units``
    must equal the weights' hidden size, and its kind (LSTM or GRU) must match the number of
    gate blocks. A missing bias (None) is written as zeros; biases cannot go into a layer
    built with ``use_bias=False``.
    """
    kind, cell = _keras_cell(layer)
    G, H, name = _GATES[kind], cell.units, _NAMES[kind]
    w_ih, w_hh, b_ih, b_hh = (None if t is None else t.detach() for t in weights)
    if w_hh.dim() != 2 or w_hh.shape[1] * G != w_hh.shape[0]:
        raise ValueError(
            f"a Keras {name} needs w_hh of shape ({G}*H, H), got {tuple(w_hh.shape)}; "
            f"are these weights from a different kind of layer?")
    if w_hh.shape[1] != H:
        raise ValueError(
            f"the Keras {name} has units={H} but the weights have hidden size {w_hh.shape[1]} "
            f"(w_hh is {tuple(w_hh.shape)}); build the Keras layer with units={w_hh.shape[1]}.")
    if w_ih.dim() != 2 or w_ih.shape[0] != G * H:
        raise ValueError(f"expected w_ih of shape ({G * H}, H_in), got {tuple(w_ih.shape)}")
    H_in = w_ih.shape[1]
    if not cell.built:
        layer.build((None, H_in) if layer is cell else (None, None, H_in))
    if tuple(cell.kernel.shape) != (H_in, G * H):
        raise ValueError(
            f"the Keras {name} was built for inputs of size {cell.kernel.shape[0]}, "
            f"but the weights expect inputs of size {H_in} (w_ih is {tuple(w_ih.shape)}).")
    has_bias = b_ih is not None or b_hh is not None
    if has_bias and not cell.use_bias:
        raise ValueError(
            f"the weights have biases but the Keras {name} was built with use_bias=False; "
            "build it with use_bias=True.")

    if kind == "lstm":
        _assign(cell.kernel, w_ih.T)                       # (H_in, 4H)
        _assign(cell.recurrent_kernel, w_hh.T)             # (H, 4H)
    else:
        _assign(cell.kernel, _swap_first_two(w_ih, H, dim=0).T)          # (H_in, 3H): r|z|n -> z|r|h
        _assign(cell.recurrent_kernel, _swap_first_two(w_hh, H, dim=0).T)  # (H, 3H)
    if cell.use_bias:
        zeros = w_ih.new_zeros(G * H)
        b_ih = zeros if b_ih is None else b_ih
        b_hh = zeros if b_hh is None else b_hh
        if kind == "lstm":
            _assign(cell.bias, b_ih + b_hh)                # (4H,)
        else:
            _assign(cell.bias, torch.stack([_swap_first_two(b_ih, H, dim=0),
                                            _swap_first_two(b_hh, H, dim=0)]))  # (2, 3H)


def load_reference_into_torch(weights: Sequence[LayerWeights], module: nn.Module) -> None:
    """Copy reference weights, one ``LayerWeights`` per layer, into a torch recurrent module in place.

    ``module`` is an ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (as many entries as ``num_layers``) or one of
    their cells (one entry). Shapes must match exactly; a missing bias (None) is written as zeros.
    """
    if isinstance(weights, LayerWeights):
        raise TypeError("expected a list of LayerWeights, one per layer; wrap a single one in [ ]")
    targets = weights_of(module)
    name = type(module).__name__
    if len(weights) != len(targets):
        raise ValueError(f"the {name} has {len(targets)} layer(s) but {len(weights)} were given")
    with torch.no_grad():
        for k, (src, dst) in enumerate(zip(weights, targets)):
            if src.w_hh.shape != dst.w_hh.shape:
                raise ValueError(
                    f"layer {k}: the {name} expects w_hh of shape {tuple(dst.w_hh.shape)}, got "
                    f"{tuple(src.w_hh.shape)}; its hidden size (or kind of layer) differs from the weights'.")
            if src.w_ih.shape != dst.w_ih.shape:
                raise ValueError(
                    f"layer {k}: the {name} expects w_ih of shape {tuple(dst.w_ih.shape)}, got "
                    f"{tuple(src.w_ih.shape)}; its input size differs from the weights'.")
            for field in ("w_ih", "w_hh", "b_ih", "b_hh"):
                s, d = getattr(src, field), getattr(dst, field)
                if d is None:
                    if s is not None:
                        raise ValueError(
                            f"layer {k}: the weights have {field} but the {name} was built with "
                            "bias=False; build it with bias=True.")
                    continue
                if s is None:
                    d.zero_()
                elif s.shape != d.shape:
                    raise ValueError(
                        f"layer {k}: the {name} expects {field} of shape {tuple(d.shape)}, got {tuple(s.shape)}")
                else:
                    d.copy_(s)


def _as_layer_list(layers: Any) -> list:
    return list(layers) if isinstance(layers, (list, tuple)) else [layers]


def _check_stack(kind: str, layers: list, module: nn.Module) -> None:
    """The Keras stack and the torch module hold the same kind of layer, equally many of them."""
    n = len(weights_of(module))
    if len(layers) != n:
        raise ValueError(
            f"the {type(module).__name__} has {n} layer(s) but {len(layers)} Keras layer(s) were given; "
            "pass one Keras layer per torch layer, bottom first.")
    for k, layer in enumerate(layers):
        keras_kind, _ = _keras_cell(layer)
        if keras_kind != kind:
            raise TypeError(
                f"Keras layer {k} is a {_NAMES[keras_kind]} but the torch module is a {_NAMES[kind]}")
        if k < len(layers) - 1 and not getattr(layer, "return_sequences", True):
            raise ValueError(
                f"Keras layer {k} has return_sequences=False, so the layer above it sees only the last "
                "step; in a stacked torch layer every layer reads the whole sequence below it.")


def _single(layers: Any, module: nn.Module, expected: str) -> Any:
    """The one Keras layer that a torch Linear/Embedding maps to, checked for its type."""
    keras = _keras()
    layers = _as_layer_list(layers)
    if len(layers) != 1:
        raise ValueError(f"an nn.{type(module).__name__} maps to one Keras layer, got {len(layers)}")
    layer = layers[0]
    if not isinstance(layer, getattr(keras.layers, expected)):
        raise TypeError(
            f"an nn.{type(module).__name__} maps to a Keras {expected} layer, got {type(layer).__name__}")
    return layer


def _check_pair(name: str, torch_shape: tuple, keras_shape: tuple, what: str) -> None:
    if torch_shape != keras_shape:
        raise ValueError(f"{name}: the torch layer has {what} {torch_shape} but the Keras layer has {keras_shape}")


def _linear_dense(module: nn.Linear, layers: Any, to_keras: bool) -> None:
    r"""``nn.Linear``: ``y = x W^T + b`` with ``weight`` W (out, in); Keras ``Dense``: ``kernel`` (in, out) = W^T.

    The Dense layer's ``activation`` is not a parameter and is not copied: apply it in torch yourself.
    """
    dense = _single(layers, module, "Dense")
    if not dense.built and to_keras:
        dense.build((None, module.in_features))
    if not dense.built:
        raise ValueError("this Keras Dense layer has no weights yet; call it on an input before converting.")
    _check_pair("Linear/Dense", (module.in_features, module.out_features), tuple(dense.kernel.shape),
                "(inputs, outputs) =")
    if (module.bias is not None) != dense.use_bias:
        raise ValueError(f"Linear/Dense: the torch layer has bias={module.bias is not None} "
                         f"but the Keras layer has use_bias={dense.use_bias}; build them alike.")
    if to_keras:
        _assign(dense.kernel, module.weight.T)            # (in, out)
        if module.bias is not None:
            _assign(dense.bias, module.bias)
    else:
        with torch.no_grad():
            module.weight.copy_(_to_torch(dense.kernel).T)  # (out, in)
            if module.bias is not None:
                module.bias.copy_(_to_torch(dense.bias))


def _embedding(module: nn.Embedding, layers: Any, to_keras: bool) -> None:
    """``nn.Embedding.weight`` and Keras ``Embedding.embeddings`` are both (vocabulary, dimension)."""
    layer = _single(layers, module, "Embedding")
    if not layer.built and to_keras:
        layer.build()
    if not layer.built:
        raise ValueError("this Keras Embedding layer has no weights yet; call it on an input before converting.")
    _check_pair("Embedding", tuple(module.weight.shape), tuple(layer.embeddings.shape),
                "(vocabulary, dimension) =")
    if to_keras:
        _assign(layer.embeddings, module.weight)
    else:
        with torch.no_grad():
            module.weight.copy_(_to_torch(layer.embeddings))


def torch_to_keras(module: nn.Module, layers: Any) -> None:
    """Copy one torch module's parameters into the matching Keras layer(s); unbuilt layers are built.

    ==================================  =================================================
    torch ``module``                    Keras ``layers``
    ==================================  =================================================
    ``nn.LSTM`` / ``nn.GRU``            one ``LSTM`` / ``GRU`` per torch layer, bottom first
    ``nn.LSTMCell`` / ``nn.GRUCell``    an ``LSTM``/``GRU`` layer or an ``LSTMCell``/``GRUCell``
    ``nn.Linear``                       a ``Dense`` (its activation is not a parameter)
    ``nn.Embedding``                    an ``Embedding``
    ==================================  =================================================

    A single layer may be passed bare or in a list. Afterwards a Keras stack fed batch-first
    input gives the outputs of ``module`` run with ``batch_first=True``.
    """
    if isinstance(module, nn.Linear):
        return _linear_dense(module, layers, to_keras=True)
    if isinstance(module, nn.Embedding):
        return _embedding(module, layers, to_keras=True)
    kind = _torch_kind(module)
    layers = _as_layer_list(layers)
    _check_stack(kind, layers, module)
    for w, layer in zip(weights_of(module), layers):
        reference_to_keras(w, layer)


def keras_to_torch(layers: Any, module: nn.Module) -> None:
    """Copy built Keras layer(s) into a torch module of the same kind and sizes, in place.

    The pairs are those of :func:`torch_to_keras`: LSTM/GRU layers (bottom first, as many as
    ``num_layers``; one for a cell), a ``Dense`` into an ``nn.Linear``, an ``Embedding`` into an
    ``nn.Embedding``.
    """
    if isinstance(module, nn.Linear):
        return _linear_dense(module, layers, to_keras=False)
    if isinstance(module, nn.Embedding):
        return _embedding(module, layers, to_keras=False)
    kind = _torch_kind(module)
    layers = _as_layer_list(layers)
    _check_stack(kind, layers, module)
    load_reference_into_torch([keras_to_reference(layer) for layer in layers], module)
