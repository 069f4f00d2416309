"""The trusted runner: the real checkers, in this process, grading functions that live in the sandbox.

Does a correct function pass through the proxy and a wrong one get the checker's named mistake? Do
the tricks that fool an in-kernel test (objects that compare equal to anything, tensor subclasses,
patched ``torch.allclose`` or checkers, answers hard-coded for the visible seed) now score 0? Are
test cells read strictly, and are forbidden shortcuts charged to the parts that reach them?
"""
from __future__ import annotations

import inspect
import os
import re
import sys
import textwrap

import pytest

from course_lib import checkers
from course_lib.grading import sandbox, trusted
from course_lib.grading.remote import CellPlan
from course_lib.grading.sandbox import Limits, Zygote
from course_lib.grading.trusted import CheckCall, GradingConfigError, Student, parse_test_cell, policy_findings

sys.path.insert(0, os.path.dirname(__file__))
import wrong_impls  # noqa: E402

LIMITS = Limits(call_timeout=5, cell_timeout=5, cpu_seconds=60, memory_bytes=4 * 2**30)
SETUP = "import math\nimport numpy as np\nimport torch\nfrom course_lib import checkers"


@pytest.fixture(scope="module")
def zygote():
    z = Zygote(LIMITS, hide=sandbox.default_hidden(), keep=sandbox.python_paths())
    z.start()
    yield z
    z.close()


LSTM_CELL = textwrap.dedent("""
    def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
        h_prev, c_prev = hx
        gates = input @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh
        a_i, a_f, a_g, a_o = gates.chunk(4, dim=1)
        i, f, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.sigmoid(a_o)
        c = f * c_prev + i * torch.tanh(a_g)
        return o * torch.tanh(c), c
""")


def grade(zygote, *cells: str, test: str = "checkers.check_lstm_cell(lstm_cell)", secret_seed: int | None = 12345):
    code = list(enumerate([SETUP, *cells]))
    return trusted.grade_part(zygote, LIMITS, code, CellPlan(), parse_test_cell(test), checkers,
                              secret_seed=secret_seed)


def source_of(fn, name: str) -> str:
    src = textwrap.dedent(inspect.getsource(fn))
    return src.replace(f"def {fn.__name__}(", f"def {name}(", 1)


# ----------------------------------------------------------------------------- honest submissions

def test_a_correct_function_passes_through_the_proxy_and_the_secret_seed(zygote):
    result = grade(zygote, LSTM_CELL)
    assert result.passed, result.message
    assert "lstm_cell: correct on 3 random cases" in result.stdout
    assert "also correct on a fresh random seed" in result.stdout
    assert "12345" not in result.stdout and result.log[0] == "secret seed 12345"


@pytest.mark.parametrize("wrong, label", [
    (wrong_impls.lstm_cell_i_f_swapped, "the input and forget gates look swapped"),
    (wrong_impls.lstm_cell_no_forget, "lstm_cell: "),
    (wrong_impls.lstm_cell_returns_c_h, "lstm_cell: "),
])
def test_a_wrong_function_gets_the_checkers_message(zygote, wrong, label):
    result = grade(zygote, _with_helpers(wrong))
    assert not result.passed and result.ename == "CheckFailed"
    assert result.message.startswith("lstm_cell: ")
    assert label in result.message
    in_process = _message_in_process(wrong)
    assert result.message == in_process, "the proxy must not change what the checker says"


def _with_helpers(fn) -> str:
    """All of tests/wrong_impls.py (the helpers the wrong versions share), then lstm_cell = that version."""
    return inspect.getsource(wrong_impls) + f"\nlstm_cell = {fn.__name__}\n"


def _message_in_process(fn) -> str:
    with pytest.raises(checkers.CheckFailed) as info:
        checkers.check_lstm_cell(fn)
    return str(info.value)


def test_an_untouched_stub_says_not_implemented(zygote):
    result = grade(zygote, "def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):\n    raise NotImplementedError()")
    assert not result.passed and "not implemented yet" in result.message


def test_a_missing_function_is_a_name_error(zygote):
    result = grade(zygote, "x = 1")
    assert not result.passed and (result.ename, result.message) == ("NameError", "name 'lstm_cell' is not defined")


def test_an_exception_is_reported_with_the_students_line(zygote):
    cell = "def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):\n    h, c = hx\n    return h @ w_ih, c"
    result = grade(zygote, cell)
    assert not result.passed and "your lstm_cell raised RuntimeError" in result.message
    assert "(line 3 in lstm_cell: `return h @ w_ih, c`)" in result.message


# ----------------------------------------------------------------------------- tricks that now score 0

ATTACKS = {
    "eq_always_true": """
        class Anything:
            def __eq__(self, other): return True
            __array_priority__ = 1000
        def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
            return Anything(), Anything()""",
    "tensor_subclass_fakes_allclose": """
        class Liar(torch.Tensor):
            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                if func.__name__ in ("allclose", "eq", "sub", "__sub__", "equal", "isclose"):
                    return torch.tensor(True) if func.__name__ != "sub" else torch.zeros(())
                return super().__torch_function__(func, types, args, kwargs)
        def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
            z = torch.zeros(input.shape[0], w_hh.shape[1]).as_subclass(Liar)
            return z, z""",
    "ndarray_subclass": """
        class Sneaky(np.ndarray):
            def __eq__(self, other): return np.ones(self.shape, bool)
        def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
            z = np.zeros((input.shape[0], w_hh.shape[1]), np.float32).view(Sneaky)
            return z, z""",
    "array_hook_walks_frames": """
        import gc, sys
        class Spy:
            def __array__(self, *a, **k):
                for obj in gc.get_objects():
                    if isinstance(obj, torch.Tensor) and obj.dtype == torch.float64:
                        return obj.numpy()
                return np.zeros(1)
            def __float__(self):
                f = sys._getframe()
                while f:
                    for v in f.f_locals.values():
                        if isinstance(v, float): return v
                    f = f.f_back
                return 0.0
        def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
            return Spy(), Spy()""",
    "patches_allclose_and_checkers": """
        import course_lib, sys
        torch.allclose = lambda *a, **k: True
        torch.equal = lambda *a, **k: True
        checkers.check_lstm_cell = lambda *a, **k: print("lstm_cell: correct")
        checkers.check_lstm_cell.__code__ = (lambda *a, **k: None).__code__
        sys.modules["course_lib"] = None
        def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
            return hx""",
    "hides_errors": """
        import sys
        sys.excepthook = lambda *a: None
        get_ipython().showtraceback = lambda *a, **k: None
        def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
            raise RuntimeError("hidden")""",
    "nan_output": """
        def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
            z = torch.full((input.shape[0], w_hh.shape[1]), float("nan"))
            return z, z""",
    "wrong_dtype": LSTM_CELL.replace("return o * torch.tanh(c), c", "return (o * torch.tanh(c)).double(), c.double()"),
    "broadcasting_shape": LSTM_CELL.replace("return o * torch.tanh(c), c", "return (o * torch.tanh(c))[:1], c[:1]"),
    "mutates_its_inputs": LSTM_CELL.replace("h_prev, c_prev = hx", "h_prev, c_prev = hx\n    w_ih.mul_(1.0001)"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_tricks_that_fool_an_in_kernel_test_score_zero(zygote, name):
    result = grade(zygote, textwrap.dedent(ATTACKS[name]))
    assert not result.passed, f"{name} passed: {result.stdout}"
    assert result.ename in ("CheckFailed", "GradingStopped")


def test_a_function_hard_coded_for_the_visible_seed_fails_the_secret_one(zygote):
    # The student ran the visible check, recorded its inputs and answers, and replays them.
    table = {}
    _, cases = checkers.cells.build("lstm", 0)
    for case in cases:
        key = round(float(case.args["input"].sum()), 4)
        table[key] = tuple(t.float().tolist() for t in case.expected)
    cell = (f"TABLE = {table!r}\n"
            "def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):\n"
            "    h, c = TABLE.get(round(float(input.sum()), 4), (hx[0].tolist(), hx[1].tolist()))\n"
            "    return torch.tensor(h), torch.tensor(c)")
    visible_only = grade(zygote, cell, secret_seed=None)
    assert "lstm_cell: correct on 3 random cases" in visible_only.stdout        # the visible check is fooled
    assert not visible_only.passed and "fresh random seed" in visible_only.message
    assert "seed=(a secret one)" in visible_only.message or "seed=" not in visible_only.message


def test_a_worker_killed_mid_check_fails_only_that_part(zygote):
    cell = "import os\ndef lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):\n    os._exit(0)"
    result = grade(zygote, cell)
    assert not result.passed and result.ename == "GradingStopped"
    assert "lstm_cell: your code ended the grading process (exited with code 0)" in result.message
    assert grade(zygote, LSTM_CELL).passed


def test_clip_grad_norm_through_the_proxy_detects_a_replaced_list_item(zygote):
    good = ("def clip_grad_norm(grads, max_norm):\n"
            "    total = float(torch.sqrt(sum((g ** 2).sum() for g in grads)))\n"
            "    return [g * min(1.0, max_norm / (total + 1e-6)) for g in grads], total")
    assert grade(zygote, good, test="checkers.check_clip_grad_norm(clip_grad_norm)").passed
    bad = good.replace("    return [g", "    grads[0] = grads[0] * 1\n    return [g")
    result = grade(zygote, bad, test="checkers.check_clip_grad_norm(clip_grad_norm)")
    assert not result.passed and "changed the list grads" in result.message


def test_a_fake_float_for_the_norm_is_refused(zygote):
    cell = ("class Yes(float):\n"
            "    def __eq__(self, other): return True\n"
            "    def __sub__(self, other): return 0.0\n"
            "def clip_grad_norm(grads, max_norm):\n"
            "    return [g * 0 for g in grads], Yes(0.0)")
    result = grade(zygote, cell, test="checkers.check_clip_grad_norm(clip_grad_norm)")
    assert not result.passed


# ----------------------------------------------------------------------------- reading test cells

def test_a_test_cell_with_hidden_tests_parses_into_checker_calls():
    source = ("# Checks lstm_cell.\n"
              "checkers.check_lstm_cell(lstm_cell)\n"
              "### BEGIN HIDDEN TESTS\n"
              "checkers.check_lstm_cell(lstm_cell, seed=9, batch=2, input_size=3, hidden=6)\n"
              "### END HIDDEN TESTS\n"
              "model = checkers.check_same_model(build, Model, hidden_size=3, convert_fn=copy)\n")
    calls = parse_test_cell(source)
    assert calls == [CheckCall("check_lstm_cell", (Student("lstm_cell"),), {}, 2),
                     CheckCall("check_lstm_cell", (Student("lstm_cell"),),
                               {"seed": 9, "batch": 2, "input_size": 3, "hidden": 6}, 4),
                     CheckCall("check_same_model", (Student("build"), Student("Model")),
                               {"hidden_size": 3, "convert_fn": Student("copy")}, 6)]


@pytest.mark.parametrize("source, why", [
    ("assert lstm_cell(1) == 2", "is not a checker call"),
    ("import os\nchecks.check_lstm_cell(lstm_cell)", "is not a checker call"),
    ("checkers.check_lstm_cell(lstm_cell, seed=make_seed())", "neither a name nor a literal"),
    ("checkers.check_training(train, data=(x_train, y_train))", "neither a name nor a literal"),
    ("checkers.check_lstm_cell(**options)", "`**` arguments"),
    ("# nothing", "calls no checker"),
])
def test_anything_else_in_a_test_cell_is_a_configuration_error(source, why):
    with pytest.raises(GradingConfigError, match=re.escape(why)):
        parse_test_cell(source, "cell_check")


# ----------------------------------------------------------------------------- forbidden shortcuts

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


def test_recover_interrupted_regrades_only_submissions_whose_grading_never_finished(tmp_path):
    """A marker left by a killed run makes the next nbgrader command drop that half-written folder; a
    finished submission (no marker) is kept, so a plain re-run grades each submission exactly once."""
    from course_lib.grading.nbgrader_plugin import MARKER, recover_interrupted
    autograded = tmp_path / "autograded"
    (autograded / "ada" / "01_rnn").mkdir(parents=True)
    (autograded / "ada" / "01_rnn" / "rnn.ipynb").write_text("{}")
    (autograded / "ada" / ("01_rnn" + MARKER)).write_text("started")
    (autograded / "bob" / "01_rnn").mkdir(parents=True)
    (autograded / "bob" / "01_rnn" / "rnn.ipynb").write_text("{}")
    removed = recover_interrupted(str(autograded))
    assert removed == [str(autograded / "ada" / "01_rnn")]
    assert not (autograded / "ada" / "01_rnn").exists()
    assert not (autograded / "ada" / ("01_rnn" + MARKER)).exists()
    assert (autograded / "bob" / "01_rnn" / "rnn.ipynb").exists()


# ----------------------------------------------------------------------------- the shortcuts of issue 15

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
    from course_lib.grading.nbgrader_plugin import TrustedExecute
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


def test_the_answer_key_is_never_preloaded():
    from course_lib.grading.nbgrader_plugin import TrustedExecute
    _, config = _config()
    preload = TrustedExecute(config=config)._preload({"from course_lib import checkers, data\nimport torch",
                                                      "import course_lib.reference\nimport course_lib.checkers"})
    assert "course_lib.data" in preload and "torch" in preload
    assert not [m for m in preload if m.startswith(("course_lib.checkers", "course_lib.reference"))]


LSTM_OPS = ["aten::lstm", "aten::lstm_cell", "autograd"]
REACH_LSTM_CELL = {   # routes to torch.lstm_cell that no static scan can follow; each must meet the dispatcher
    "reversed_name": "fast = getattr(torch, ''.join(reversed('llec_mtsl')))",
    "pickle": "import pickle\nfast = pickle.loads(b'ctorch\\nlstm_cell\\n.')",
    "ops_namespace": "fast = getattr(torch.ops.aten, ''.join(reversed('llec_mtsl')))",
    "module_class": ("def fast(input, hx, w_ih, w_hh, b_ih, b_hh):\n"
                     "    cell = getattr(torch.nn, ''.join(reversed('lleCMTSL')))(w_ih.shape[1], w_hh.shape[1])\n"
                     "    with torch.no_grad():\n"
                     "        for p, v in zip(cell.parameters(), (w_ih, w_hh, b_ih, b_hh)):\n"
                     "            p.copy_(v)\n"
                     "        return cell(input, hx)"),
    "in_a_thread": ("import threading\ndef fast(*a):\n    out = []\n"
                    "    t = threading.Thread(target=lambda: out.append(getattr(torch, 'lstm_' + 'cell')(*a)))\n"
                    "    t.start(); t.join()\n    return out[0]"),
    "caught_and_retried": ("def fast(*a):\n    for _ in range(3):\n        try:\n"
                           "            return getattr(torch._VF, 'lstm_' + 'cell')(*a)\n"
                           "        except BaseException:\n            pass"),
}


@pytest.mark.parametrize("name", sorted(REACH_LSTM_CELL))
def test_a_forbidden_operator_fails_the_part_whatever_name_reaches_it(zygote, name):
    cell = REACH_LSTM_CELL[name] + "\ndef lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):\n" \
                                   "    return fast(input, hx, w_ih, w_hh, b_ih, b_hh)"
    allowed = grade(zygote, cell)
    assert allowed.passed, allowed.message                              # the shortcut itself works...
    code = list(enumerate([SETUP, cell]))
    test = parse_test_cell("checkers.check_lstm_cell(lstm_cell)")
    result = trusted.grade_part(zygote, LIMITS, code, CellPlan(), test, checkers, secret_seed=1, forbid=LSTM_OPS)
    assert not result.passed and result.ename == "PolicyViolation", result.message
    assert "lstm_cell: called `aten::lstm_cell`" in result.message and "scores 0" in result.message


def test_autograd_is_switched_off_for_a_part_that_forbids_it(zygote):
    cell = ("def lstm_backward(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs):\n"
            "    ins = [t.detach().requires_grad_() for t in (xs, h0, c0, w_ih, w_hh, b_ih, b_hh)]\n"
            "    xs_, h, c, *w = ins\n    hs = []\n"
            "    for x_t in xs_:\n        h, c = torch.lstm_cell(x_t, (h, c), *w)\n        hs.append(h)\n"
            "    out = (torch.stack(hs) * grad_hs).sum()\n"
            "    return getattr(torch, ''.join(reversed('dargotua'))).grad(out, ins)")
    test = "checkers.check_lstm_backward(lstm_backward)"
    assert grade(zygote, cell, test=test).passed                    # autograd does the exercise...
    code = list(enumerate([SETUP, cell]))
    result = trusted.grade_part(zygote, LIMITS, code, CellPlan(), parse_test_cell(test), checkers, secret_seed=1,
                                forbid=["autograd"])
    assert result.ename == "PolicyViolation" and "called autograd" in result.message, result.message
    assert grade(zygote, cell, test=test).passed                    # ...and the next part's worker is unaffected


def test_a_forbidden_call_while_the_cells_run_stops_that_cell_only(zygote):
    cell = "print(torch.nn.LSTMCell(3, 4)(torch.zeros(1, 3)))\nAFTER = 1"
    plan = CellPlan()
    code = list(enumerate([SETUP, LSTM_CELL, cell]))
    result = trusted.grade_part(zygote, LIMITS, code, plan, parse_test_cell("checkers.check_lstm_cell(lstm_cell)"),
                                checkers, secret_seed=1, forbid=LSTM_OPS)
    assert result.passed, result.message
    assert plan.errors[2][0] == "ForbiddenOperation" and "aten::lstm_cell" in plan.errors[2][1]


@pytest.fixture(scope="module")
def sealed_zygote():
    from course_lib.grading import forbid
    z = Zygote(LIMITS, hide=[*sandbox.default_hidden(), *forbid.answer_key_paths()], keep=sandbox.python_paths(),
               preload=["numpy", "torch", "course_lib.data", "IPython.core.interactiveshell"])
    z.start()
    yield z
    z.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="hiding files from the sandbox needs root (or a container)")
def test_the_answer_key_is_neither_in_the_sandbox_files_nor_in_its_memory(sealed_zygote):
    from course_lib.grading.remote import Worker
    probe = textwrap.dedent("""
        import gc, glob, os, sys, types
        import course_lib
        from course_lib import data
        def probe():
            root = os.path.dirname(course_lib.__file__)
            texts = []
            for path in glob.glob(root + "/**/*", recursive=True):
                if os.path.isfile(path):
                    with open(path, "rb") as f:
                        texts.append(f.read())
            loaded = sorted(m for m in sys.modules if m.startswith("course_lib"))
            fns = [f.__module__ for f in gc.get_objects()
                   if isinstance(f, types.FunctionType) and str(f.__module__).startswith("course_lib.")]
            return {"key": any(b"def lstm_cell" in t or b"_oracle" in t or b"W_ii" in t for t in texts),
                    "loaded": loaded, "functions": sorted(set(fns)),
                    "series": float(data.seasonal_series(10, seed=0).sum())}
    """)
    with Worker(sealed_zygote, LIMITS, [(0, "from course_lib import checkers"), (1, probe)], CellPlan()) as worker:
        got = worker.function("probe")()
    assert got["key"] is False
    assert not [m for m in got["functions"] if m.startswith(("course_lib.reference", "course_lib.checkers"))]
    assert not [m for m in got["loaded"] if m.startswith("course_lib.reference.")
                or m.startswith("course_lib.checkers.")]
    assert got["series"] == pytest.approx(float(__import__("course_lib.data").data.seasonal_series(10, seed=0).sum()))
