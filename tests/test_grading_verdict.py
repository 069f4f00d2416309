"""A part's verdict (course_lib.grading.verdict): the real checkers, in this process, grading functions that
live in the sandbox.

Does a correct function pass through the proxy and a wrong one get the checker's named mistake? Do
the tricks that fool an in-kernel test (objects that compare equal to anything, tensor subclasses,
patched ``torch.allclose`` or checkers, answers hard-coded for the visible seed) now score 0? Does a
forbidden operation reached while graded fail the part? (Reading test cells: test_grading_testcells.py;
the static scan: test_grading_policy.py.)
"""
from __future__ import annotations

import inspect
import os
import sys
import textwrap

import pytest

from course_lib import checkers
from course_lib.grading import verdict
from course_lib.grading.grader.worker import CellPlan
from course_lib.grading.grader.zygote import Zygote, default_hidden, python_paths
from course_lib.grading.limits import Limits
from course_lib.grading.testcells import parse_test_cell

sys.path.insert(0, os.path.dirname(__file__))
import wrong_impls  # noqa: E402

LIMITS = Limits(call_timeout=5, cell_timeout=5, cpu_seconds=60, memory_bytes=4 * 2**30)
SETUP = "import math\nimport numpy as np\nimport torch\nfrom course_lib import checkers"


@pytest.fixture(scope="module")
def zygote():
    z = Zygote(LIMITS, hide=default_hidden(), keep=python_paths())
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
    return verdict.grade_part(zygote, LIMITS, code, CellPlan(), parse_test_cell(test), checkers,
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


def _config():
    from traitlets.config.loader import PyFileConfigLoader
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return root, PyFileConfigLoader("nbgrader_config.py", path=root).load_config()


def test_the_answer_key_is_never_preloaded():
    from course_lib.grading.execute import TrustedExecute
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
    result = verdict.grade_part(zygote, LIMITS, code, CellPlan(), test, checkers, secret_seed=1, forbid=LSTM_OPS)
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
    result = verdict.grade_part(zygote, LIMITS, code, CellPlan(), parse_test_cell(test), checkers, secret_seed=1,
                                forbid=["autograd"])
    assert result.ename == "PolicyViolation" and "called autograd" in result.message, result.message
    assert grade(zygote, cell, test=test).passed                    # ...and the next part's worker is unaffected


def test_a_forbidden_call_while_the_cells_run_stops_that_cell_only(zygote):
    cell = "print(torch.nn.LSTMCell(3, 4)(torch.zeros(1, 3)))\nAFTER = 1"
    plan = CellPlan()
    code = list(enumerate([SETUP, LSTM_CELL, cell]))
    result = verdict.grade_part(zygote, LIMITS, code, plan, parse_test_cell("checkers.check_lstm_cell(lstm_cell)"),
                                checkers, secret_seed=1, forbid=LSTM_OPS)
    assert result.passed, result.message
    assert plan.errors[2][0] == "ForbiddenOperation" and "aten::lstm_cell" in plan.errors[2][1]


@pytest.fixture(scope="module")
def sealed_zygote():
    from course_lib.grading import answer_key
    z = Zygote(LIMITS, hide=[*default_hidden(), *answer_key.answer_key_paths()], keep=python_paths(),
               preload=["numpy", "torch", "course_lib.data", "IPython.core.interactiveshell"])
    z.start()
    yield z
    z.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="hiding files from the sandbox needs root (or a container)")
def test_the_answer_key_is_neither_in_the_sandbox_files_nor_in_its_memory(sealed_zygote):
    from course_lib.grading.grader.worker import Worker
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
