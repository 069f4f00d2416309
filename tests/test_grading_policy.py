"""The static policy scan (course_lib.grading.policy): are forbidden shortcuts found whatever name reaches
them, charged to the parts that reach them only, and never found in the instructor's own solutions?
"""
from __future__ import annotations

import os

import pytest

from course_lib.grading.policy import policy_findings
from course_lib.grading.testcells import Student, parse_test_cell


POLICY = ["nn.LSTMCell", "course_lib.reference", "eval"]


def findings(*cells: str, graded=None) -> dict:
    graded = graded or {"lstm_cell_check": ["lstm_cell"], "lstm_layer_check": ["lstm_layer"]}
    return policy_findings(list(enumerate(cells)), graded, POLICY, everywhere=["eval"])


def test_a_forbidden_call_inside_the_graded_function_is_charged_to_its_part_only():
    cell = ("def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):\n"
            "    '''Unlike nn.LSTMCell, written by hand.'''\n"
            "    return torch.nn.LSTMCell(3, 4)(input, hx)\n"
            "def lstm_layer(xs, hx, *w):\n"
            "    return xs")
    got = findings(cell)
    assert set(got) == {"lstm_cell_check"}
    (f,) = got["lstm_cell_check"]
    assert (f.pattern, f.cell, f.line) == ("nn.LSTMCell", 0, 3)


def test_a_shortcut_reached_through_a_helper_or_an_alias_is_found():
    helper = "from course_lib.reference import lstm_cell as _ref\ndef _step(*a):\n    return _ref(*a)"
    cell = ("def lstm_cell(*a):\n    return _step(*a)\n"
            "def lstm_layer(xs, hx, *w):\n    return getattr(torch.nn, 'LSTMCell')")
    got = findings(helper, cell)
    assert {f.pattern for f in got["lstm_cell_check"]} == {"course_lib.reference"}
    assert {f.pattern for f in got["lstm_layer_check"]} == {"nn.LSTMCell"}


def test_names_are_resolved_through_the_notebooks_imports():
    graded = {"attention_check": ["attention"]}
    setup = "import torch.nn.functional as F\nimport builtins"
    cell = "def attention(q, k, v, causal=False):\n    return F.scaled_dot_product_attention(q, k, v)"
    got = policy_findings([(1, cell)], graded, ["functional.scaled_dot_product_attention"], [setup])
    assert [f.line for f in got["attention_check"]] == [2]
    cell = "def attention(q, k, v, causal=False):\n    return getattr(builtins, 'eval')('q')"
    assert set(policy_findings([(1, cell)], graded, ["eval"], [setup])) == {"attention_check"}
    cell = ("import importlib\ndef attention(q, k, v, causal=False):\n"
            "    return importlib.import_module('course_lib.reference').scaled_dot_product_attention(q, k, v)")
    assert set(policy_findings([(1, cell)], graded, ["course_lib.reference"], [setup])) == {"attention_check"}
    cell = "def attention(q, k, v, causal=False):\n    return torch._C._nn.scaled_dot_product_attention(q, k, v)"
    assert set(policy_findings([(1, cell)], graded, ["functional.scaled_dot_product_attention",
                                                     "torch.scaled_dot_product_attention"], [setup])) \
        == {"attention_check"}
    innocent = ("def attention(q, k, v, causal=False):\n    model.eval()\n    p = re.compile('eval')\n"
                "    print('eval', lstm.lstm_cell)\n    return q")
    assert policy_findings([(1, innocent)], graded, ["eval", "compile", "torch.lstm_cell"], [setup]) == {}


def test_top_level_eval_is_charged_to_every_part_and_clean_code_to_none():
    assert set(findings("eval('1')", "def lstm_cell(*a):\n    pass")) == {"lstm_cell_check", "lstm_layer_check"}
    assert findings("print(torch.nn.LSTMCell(3, 4)(x))", "def lstm_cell(*a):\n    pass") == {}   # a try-out
    assert findings("def lstm_cell(*a):\n    return reference_answer(*a)\n%timeit lstm_cell()") == {}


LSTM_POLICY = ["course_lib.reference", "course_lib.checkers.*", "eval", "exec", "compile", "pickle",
               "types.FunctionType", "nn.LSTMCell", "torch.lstm_cell", "torch.autograd", ".backward"]
NOTEBOOK_SETUP = "import torch\n\nfrom course_lib import checkers"

SCANNED = {   # name -> (the student's cell, the pattern the scan must name)
    "alias_by_assignment": ("t = torch\ndef lstm_cell(*a):\n    return t.lstm_cell(*a)", "torch.lstm_cell"),
    "alias_of_an_alias": ("t = torch\nnn_ = t.nn\ndef lstm_cell(*a):\n    return nn_.LSTMCell(3, 4)(*a)",
                          "nn.LSTMCell"),
    "loop_target": ("for fast in (torch.lstm_cell,):\n    pass\ndef lstm_cell(*a):\n    return fast(*a)",
                    "torch.lstm_cell"),
    "with_target": ("import contextlib\nwith contextlib.nullcontext(torch.lstm_cell) as fast:\n    pass\n"
                    "def lstm_cell(*a):\n    return fast(*a)", "torch.lstm_cell"),
    "global_from_a_function": ("def _setup():\n    global fast\n    fast = torch.lstm_cell\n_setup()\n"
                               "def lstm_cell(*a):\n    return fast(*a)", "torch.lstm_cell"),
    "getattr_built_string": ("def lstm_cell(*a):\n    return getattr(torch, 'lstm' + '_cell')(*a)",
                             "torch.lstm_cell"),
    "getattr_named_constant": ("NAME = f\"lstm_{'cell'}\"\ndef lstm_cell(*a):\n    return getattr(torch, NAME)(*a)",
                               "torch.lstm_cell"),
    "dict_of_the_module": ("def lstm_cell(*a):\n    return vars(torch)['lstm_cell'](*a)", "torch.lstm_cell"),
    "sys_modules": ("import sys\ndef lstm_cell(*a):\n    return sys.modules['course_lib.reference'].lstm_cell(*a)",
                    "course_lib.reference"),
    "checkers_internals": ("def lstm_cell(*a):\n    return checkers.cells._oracle('lstm')(*a)",
                           "course_lib.checkers.*"),
    "pickle": ("import pickle\nfast = pickle.loads(b'ctorch\\nlstm_cell\\n.')\ndef lstm_cell(*a):\n    return fast(*a)",
               "pickle"),
    "compile_and_function_type": ("import types\ncode = compile('def f(*a): return 1', 'x', 'exec')\n"
                                  "f = types.FunctionType(code.co_consts[0], globals())\n"
                                  "def lstm_cell(*a):\n    return f(*a)", "compile"),
    "autograd_by_getattr": ("def lstm_cell(*a):\n    return getattr(torch, 'auto' + 'grad').grad(a[0].sum(), a[0])",
                            "torch.autograd"),
    "backward_by_getattr": ("def lstm_cell(*a):\n    getattr(a[0].sum(), 'backward')()\n    return a[0].grad",
                            ".backward"),
}


@pytest.mark.parametrize("name", sorted(SCANNED))
def test_the_scan_follows_aliases_loops_and_built_names_to_the_shortcut(name):
    cell, pattern = SCANNED[name]
    got = policy_findings([(2, cell)], {"lstm_cell_check": ["lstm_cell"]}, LSTM_POLICY, [NOTEBOOK_SETUP],
                          everywhere=["course_lib.reference", "course_lib.checkers.*", "pickle", "compile"])
    assert pattern in {f.pattern for f in got.get("lstm_cell_check", [])}, got


def test_the_checkers_public_names_and_the_checks_are_not_findings():
    cell = "checkers.check_lstm_cell(lstm_cell)\ndef lstm_cell(*a):\n    return checkers.CheckFailed"
    assert policy_findings([(2, cell)], {"lstm_cell_check": ["lstm_cell"]}, LSTM_POLICY, [NOTEBOOK_SETUP]) == {}


def _config():
    from traitlets.config.loader import PyFileConfigLoader
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return root, PyFileConfigLoader("nbgrader_config.py", path=root).load_config()


def test_no_solution_reaches_a_forbidden_shortcut():
    """The instructor's solutions, scanned with the course's own policy, have no finding (no false alarm)."""
    import glob
    import nbformat
    from nbgrader import utils
    from course_lib.grading.execute import TrustedExecute
    root, config = _config()
    everywhere = list(TrustedExecute(config=config).forbidden_everywhere)
    for path in sorted(glob.glob(os.path.join(root, "solutions", "*", "*.ipynb"))):
        assignment = os.path.basename(os.path.dirname(path))
        nb = nbformat.read(path, as_version=4)
        code = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        answers = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code" and utils.is_solution(c)]
        graded = {c.metadata.nbgrader["grade_id"]: [n.name for call in parse_test_cell(c.source) for n in call.args
                                                     if isinstance(n, Student)]
                  for c in nb.cells if c.cell_type == "code" and utils.is_grade(c) and not utils.is_solution(c)}
        patterns = everywhere + list(config.TrustedExecute.forbidden.get(assignment, []))
        assert policy_findings(answers, graded, patterns, [s for _, s in code], everywhere) == {}, assignment
