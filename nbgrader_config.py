"""nbgrader configuration for the course *From RNNs to LSTMs*.

Run every nbgrader command from the repository root (where this file lives):

    nbgrader generate_assignment 01_rnn     # solutions/01_rnn  -> exercises/01_rnn (+ gradebook.db)
    nbgrader autograde 01_rnn               # submitted/<student>/01_rnn -> autograded/<student>/01_rnn
    nbgrader generate_feedback 01_rnn       # autograded/... -> feedback/<student>/01_rnn/*.html
    nbgrader export                         # grades.csv, one row per student and assignment

An assignment id may be a glob: ``nbgrader autograde "*"`` grades every assignment.
``gradebook.db``, ``submitted/``, ``autograded/``, ``feedback/`` and ``grades.csv`` are made
on first use and are not committed. Kernels inherit the environment of the command that
starts them, so run nbgrader with ``KERAS_BACKEND=torch`` set (``04_keras_pytorch`` needs it).
"""
import os

c = get_config()  # noqa: F821  (injected by traitlets when it reads this file)

# --- Where things live ---------------------------------------------------------------------
# The instructor's notebooks (solutions, hidden tests) are the source; what students get is the
# release. Both are committed; ``exercises/`` must be exactly what generate_assignment makes.
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "rnn-to-lstm"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".nbgrader.log"]
c.CourseDirectory.ignore.append("*.outcomes.json")   # written by grading (course_lib.grading.outcomes): never
                                                     # taken from a submission, never copied into feedback

# --- What a student is given ---------------------------------------------------------------
# A solution region becomes this stub. Calling an untouched function raises NotImplementedError,
# which the course_lib checkers report as one sentence ("rnn_cell is not implemented yet ...").
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"   # nbgrader's spelling
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# --- Grading ------------------------------------------------------------------------------------
# Trusted grading (course_lib.grading): the student's cells run only in a sandboxed child process
# (its own user, no network, limits, the course directory hidden); the test cells' checkers run in
# nbgrader's own process on the plain arrays that come back, plus one run with a secret seed. So
# `nbgrader autograde` never executes student code and the test cells in the same interpreter.
# (These classes used to be imported from course_lib.grading.nbgrader_plugin; that path still works.)
from course_lib.grading.execute import TrustedExecute  # noqa: E402
from course_lib.grading.metadata import RestoreCellMetadata  # noqa: E402
from course_lib.grading.recovery import MarkGradingFinished, MarkGradingStarted, recover_interrupted  # noqa: E402
from course_lib.grading.inert import SanitizeStudentContent  # noqa: E402

# A grading run that was killed (power cut, Ctrl-C twice, SIGKILL) may have left autograded folders of
# submissions whose grades were never saved; nbgrader would skip them. Remove them so that a plain
# `nbgrader autograde` grades them again. (Do not run two autogrades of one course at once.)
recover_interrupted(os.path.join(c.CourseDirectory.root, "autograded"))

# A cell whose nbgrader metadata a student edited (unknown, renamed or duplicated grade ids,
# flipped flags) is put back as the gradebook says, instead of failing the whole submission.
c.Autograde.sanitize_preprocessors = [
    MarkGradingStarted,            # a killed run leaves a marker: see recover_interrupted above
    "nbgrader.preprocessors.ClearOutput",
    RestoreCellMetadata,
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    TrustedExecute,                # in place of nbgrader's Execute
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    SanitizeStudentContent,        # the autograded notebook Formgrader shows is inert: see below
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
    MarkGradingFinished,           # the grades are saved: drop the marker
]
# Each notebook runs in under a minute once solved. One cell may take at most two minutes before it
# is stopped and skipped (the names it would define are missing; the rest still runs), one call of a
# student's function one minute (that part scores 0).
c.TrustedExecute.cell_timeout = 120
c.TrustedExecute.call_timeout = 60
c.TrustedExecute.cpu_seconds = 600               # per graded part
c.TrustedExecute.memory_bytes = 6 * 2**30        # address space; torch and keras map about 1 GiB
# The students' Validate button still runs the whole notebook in one kernel (feedback, not grades).
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
c.Execute.execute_retries = 0
# Shortcuts an exercise forbids, wherever they occur in the code a graded function reaches; the
# intro of each notebook says so. "nn.LSTMCell" is a dotted name resolved through the notebook's
# imports (so `from torch import nn; nn.LSTMCell` and `torch.nn.LSTMCell` both count, and so do
# `torch._VF.lstm_cell` and `importlib.import_module("course_lib.reference")`), ".backward" any method
# of that name. course_lib.reference, eval and exec are forbidden everywhere
# (TrustedExecute.forbidden_everywhere).
c.TrustedExecute.forbidden = {
    "01_rnn": ["nn.RNN", "nn.RNNCell", "torch.rnn_tanh", "torch.rnn_tanh_cell", "utils.clip_grad_norm_",
               "utils.clip_grad_norm", "utils.clip_grads_with_norm_", "utils.get_total_norm"],
    "02_lstm": ["nn.LSTM", "nn.LSTMCell", "torch.lstm", "torch.lstm_cell", "torch.autograd", ".backward"],
    "03_gru": ["nn.GRU", "nn.GRUCell", "torch.gru", "torch.gru_cell"],
    "04_keras_pytorch": ["course_lib.convert"],
    "05_attention": ["torch.scaled_dot_product_attention", "nn.MultiheadAttention",
                     "torch.multi_head_attention_forward"],
    "06_language_model": ["language_model.sample_ids", "language_model.next_char_probs", "language_model.generate",
                          "language_model.stream_windows", "language_model.train_lm", "language_model.detach_state",
                          "language_model.corpus", "data.load_text"],
    "07_seq2seq": ["seq2seq.additive_attention", "seq2seq.beam_search", ".decode_step", ".greedy", ".beam",
                   "torch.scaled_dot_product_attention", "nn.MultiheadAttention", "torch.multi_head_attention_forward"],
}
# The same shortcuts switched off in the sandbox while the assignment is graded, below any name the
# student's code could reach them by (aliases, getattr with a built string, pickle, compile...): ATen
# operators at the dispatcher, autograd's engine, Python functions by their code
# (course_lib/grading/sandboxed/forbid.py). A graded call that reaches one scores 0 with the reason in the
# gradebook comment. The course's answer key (course_lib.reference, the checkers' internals) is
# never in the sandbox at all.
c.TrustedExecute.forbidden_operations = {
    "01_rnn": ["aten::rnn_tanh", "aten::rnn_relu", "aten::rnn_tanh_cell", "aten::rnn_relu_cell",
               "torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_norm",
               "torch.nn.utils.clip_grads_with_norm_", "torch.nn.utils.get_total_norm"],
    "02_lstm": ["aten::lstm", "aten::lstm_cell", "aten::_thnn_fused_lstm_cell", "autograd"],
    "03_gru": ["aten::gru", "aten::gru_cell", "aten::_thnn_fused_gru_cell"],
    "05_attention": ["aten::scaled_dot_product_attention", "aten::_scaled_dot_product_*",
                     "aten::_native_multi_head_attention", "torch.nn.functional.multi_head_attention_forward"],
    # Not course_lib.seq2seq.additive_attention or Seq2Seq.decode_step: Part 4 trains the course's Seq2Seq,
    # whose forward pass runs them; the static scan above charges a graded function that names them.
    "07_seq2seq": ["aten::scaled_dot_product_attention", "aten::_scaled_dot_product_*",
                   "aten::_native_multi_head_attention", "torch.nn.functional.multi_head_attention_forward",
                   "course_lib.seq2seq.beam_search"],
}
# A student who deletes a graded cell gets it back (with a note) and is graded on it, instead of
# silently losing it; locked cells that were edited are restored from the gradebook anyway.
c.OverwriteCells.add_missing_cells = True
# Students are created in the gradebook the first time one of their submissions is autograded.
c.Autograde.create_student = True
c.GenerateAssignment.create_assignment = True
# Long outputs and tracebacks are cut in the graded copy and the feedback.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40
# `nbgrader validate` in a terminal cuts every line at this width; the checkers' messages come
# wrapped at 80 columns, and the code lines it quotes fit in 100.
c.Validator.width = 100

# --- Showing submissions: Formgrader and the feedback ---------------------------------------------
# A submission is the student's file: its Markdown (the hand-graded essay), raw cells and outputs can
# carry HTML that would run in the browser of whoever opens it, and Formgrader runs in the instructor's
# logged-in session. Every HTML view nbgrader makes (Formgrader's grading page, generate_feedback)
# renders Markdown through an allow-list (no script, event handler, javascript: link, frame, style or
# remote image; the rest is shown as text) and reduces outputs and attachments to inert types
# (course_lib/grading/inert.py). Formgrader must be started from this directory to read this file.
c.HTMLExporter.filters = {"markdown2html": "course_lib.grading.inert.markdown2html"}
c.HTMLExporter.preprocessors = [SanitizeStudentContent]

# --- Export ---------------------------------------------------------------------------------------
c.CsvExportPlugin.to = "grades.csv"
