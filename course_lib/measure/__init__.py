"""Measurements behind the book's claims, one module per topic; every name is importable from here.

- :mod:`~course_lib.measure.gates`        an LSTM's gates and states at every step (:func:`record_lstm_gates`)
- :mod:`~course_lib.measure.gradients`    gradients through time by lag: :func:`grad_norms_by_lag`,
  :func:`jacobian_norms_by_lag`, :func:`share_at_lag`
- :mod:`~course_lib.measure.cost`         parameters, seconds per training or generation step, memory,
  autograd nodes: :func:`n_parameters`, :func:`step_time`, :func:`inference_step_time`,
  :func:`training_memory`, :func:`training_cost`, :func:`autograd_nodes`
- :mod:`~course_lib.measure.experiments`  training runs: solve rates (:func:`solve`, :func:`solve_sweep`,
  :func:`summarize`), :func:`length_generalization`, :func:`clipping_runs`, :func:`small_data_run`,
  :func:`parallel_calls`
- :mod:`~course_lib.measure.formatting`   numbers as the text writes them: :func:`format_span`, :func:`format_table`
- :mod:`~course_lib.measure.layer_speed`  course_lib's recurrent layers timed against ``torch.nn`` (the benchmarks page)
- :mod:`~course_lib.measure.timing`       the one median timer (:func:`~course_lib.measure.timing.median_seconds`)
  and :func:`~course_lib.measure.timing.machine`
"""
from course_lib.measure.cost import (
    MemoryUse, StepCost, autograd_nodes, inference_step_time, n_parameters, step_time, training_cost,
    training_memory,
)
from course_lib.measure.experiments import (
    ClipRun, SmallDataRun, SolveResult, Summary, clipping_runs, find_result, length_generalization,
    parallel_calls, small_data_run, solve, solve_sweep, summarize,
)
from course_lib.measure.formatting import format_span, format_table
from course_lib.measure.gates import GateRecord, record_lstm_gates
from course_lib.measure.gradients import grad_norms_by_lag, jacobian_norms_by_lag, share_at_lag

__all__ = [
    "GateRecord", "record_lstm_gates",
    "grad_norms_by_lag", "jacobian_norms_by_lag", "share_at_lag",
    "n_parameters", "step_time", "inference_step_time", "autograd_nodes", "MemoryUse", "training_memory",
    "StepCost", "training_cost",
    "SolveResult", "solve", "solve_sweep", "find_result", "Summary", "summarize", "format_table", "format_span",
    "length_generalization", "ClipRun", "clipping_runs", "parallel_calls", "SmallDataRun", "small_data_run",
]
