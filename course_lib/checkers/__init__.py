"""Checkers that grade a student's function against the reference and say what to fix.

Each ``check_*`` takes the student's function (and optional ``seed`` and shape options), runs it
on seeded random inputs, prints one line when it is right and otherwise raises
:class:`CheckFailed` (an ``AssertionError``) with one message: what was expected, what came back,
and, when the answer matches a known mistake, the name of that mistake::

    from course_lib.checkers import check_lstm_cell
    check_lstm_cell(lstm_cell)
    # lstm_cell: correct on 3 random cases (batch=3, input=4, hidden=5, and one with input=hidden=5).

- :mod:`.cells`      ``check_rnn_cell``, ``check_lstm_cell``, ``check_gru_cell``
- :mod:`.layers`     ``check_rnn_layer``, ``check_lstm_layer``, ``check_gru_layer``
- :mod:`.backward`   ``check_rnn_backward``, ``check_lstm_backward`` (BPTT by hand, against autograd)
- :mod:`.attention`  ``check_attention``
- :mod:`.clipping`   ``check_clip_grad_norm``
- :mod:`.gradients`  ``check_state_gradient_norms`` (how dL/dh_t fades with the lag)
- :mod:`.counting`   ``check_parameter_count``, ``check_hidden_for_budget`` (equal parameter budgets)
- :mod:`.keras_torch` ``check_forecaster``, ``check_torch_to_keras_weights``, ``check_training``
  (and ``forecast_baselines``, the lookups a trained forecaster must beat)
- :mod:`.language_model` ``check_sample``, ``check_tbptt_epoch``, ``check_char_model`` (a character model)
- :mod:`.seq2seq`    ``check_additive_attention``, ``check_decode_step``, ``check_beam_search``,
  ``check_seq2seq_model`` (an encoder-decoder with attention trained on string reversal)
- :mod:`.weights`    trained weights returned as a state dict, checked against an architecture
- :mod:`.mistakes`   the catalogue of named mistakes the messages draw on
- :mod:`._core`      calling the student's code safely, reading its result as clean tensors, comparing
- :mod:`._engine`    the grading loop and the wording of a wrong answer

Every checker is built on :mod:`._engine`: a module's ``build`` functions return an exercise (with its
catalogue of named mistakes) and its cases, and the module lists them in ``EXERCISES``;
:func:`exercises` collects them from every module of this package, so the catalogue tests cover a new
checker module without being edited.
"""
import importlib
import pkgutil

from ._core import CheckFailed
from ._engine import Builder
from .attention import check_attention
from .backward import check_lstm_backward, check_rnn_backward
from .cells import check_gru_cell, check_lstm_cell, check_rnn_cell
from .clipping import check_clip_grad_norm
from .counting import check_hidden_for_budget, check_parameter_count
from .gradients import check_state_gradient_norms
from .keras_torch import check_forecaster, check_torch_to_keras_weights, check_training, forecast_baselines
from .language_model import check_char_model, check_sample, check_tbptt_epoch
from .layers import check_gru_layer, check_lstm_layer, check_rnn_layer
from .seq2seq import check_additive_attention, check_beam_search, check_decode_step, check_seq2seq_model

__all__ = [
    "CheckFailed", "exercises", "checker_modules",
    "check_rnn_cell", "check_lstm_cell", "check_gru_cell",
    "check_rnn_layer", "check_lstm_layer", "check_gru_layer",
    "check_rnn_backward", "check_lstm_backward",
    "check_attention", "check_clip_grad_norm",
    "check_state_gradient_norms", "check_parameter_count", "check_hidden_for_budget",
    "check_forecaster", "check_torch_to_keras_weights", "check_training",
    "forecast_baselines",
    "check_sample", "check_tbptt_epoch", "check_char_model",
    "check_additive_attention", "check_decode_step", "check_beam_search", "check_seq2seq_model",
]


def checker_modules() -> dict[str, object]:
    """Every public module of this package, by name (``"cells"``, ``"counting"``, ...), imported."""
    return {info.name: importlib.import_module(f"{__name__}.{info.name}")
            for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")}


def exercises() -> dict[str, Builder]:
    """Every exercise the engine grades, by name, from the ``EXERCISES`` of every checker module.

    A builder takes no arguments and returns ``(Exercise, cases)``; ``Exercise.mistakes`` is the
    exercise's catalogue. Two modules may not claim the same exercise name.
    """
    found: dict[str, Builder] = {}
    for module_name, module in checker_modules().items():
        for name, build in getattr(module, "EXERCISES", {}).items():
            if name in found:
                raise ValueError(f"two checker modules define the exercise {name!r} (the second is {module_name})")
            found[name] = build
    return found
