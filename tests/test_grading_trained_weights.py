"""Trained weights as an answer, through the trusted grader: only plain tensors cross, and the grader judges them.

A student's ``train_char_model`` runs in the sandbox and returns a state dict; the checker, in this
process, receives fresh tensors decoded from bytes, checks them against the exercise's architecture
(``course_lib.checkers.weights``) and measures the held-out perplexity itself. Does every malformed or
hostile state dict score 0 with a one-sentence reason, and does a well-formed one get judged on its
perplexity (here against a lenient target, so that no training is needed)?
"""
from __future__ import annotations

import textwrap

import pytest

from course_lib import checkers
from course_lib.grading import verdict
from course_lib.grading.grader.worker import CellPlan
from course_lib.grading.grader.zygote import Zygote, default_hidden, python_paths
from course_lib.grading.limits import Limits
from course_lib.grading.policy import policy_findings
from course_lib.grading.testcells import parse_test_cell

LIMITS = Limits(call_timeout=30, cell_timeout=30, cpu_seconds=120, memory_bytes=4 * 2**30)
SETUP = ("import collections\nimport torch\nfrom course_lib import checkers\n"
         "from course_lib.language_model import char_model, run\ntorch.set_num_threads(1)")
LENIENT = "checkers.check_char_model(train_char_model, target=80.0)"      # an untrained model scores about 72
STRICT = "checkers.check_char_model(train_char_model)"


@pytest.fixture(scope="module")
def zygote():
    z = Zygote(LIMITS, hide=default_hidden(), keep=python_paths())
    z.start()
    yield z
    z.close()


def grade(zygote, body: str, test: str = LENIENT):
    cell = "def train_char_model(train_ids, vocab_size, seed):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    return verdict.grade_part(zygote, LIMITS, list(enumerate([SETUP, cell])), CellPlan(), parse_test_cell(test),
                              checkers, secret_seed=4242)


FRESH = "sd = {k: v.detach().clone() for k, v in char_model('gru', vocab_size, 48, embed_size=16, seed=seed).state_dict().items()}\n"


def test_a_well_formed_state_dict_crosses_and_is_judged_on_held_out_text(zygote):
    result = grade(zygote, FRESH + "return sd")
    assert result.passed, result.message
    assert "held-out perplexity" in result.stdout and "also correct on a fresh random seed" in result.stdout


def test_parameters_with_gradients_are_read_as_plain_tensors(zygote):
    result = grade(zygote, "return dict(char_model('gru', vocab_size, 48, embed_size=16, seed=seed).named_parameters())")
    assert result.passed, result.message


@pytest.mark.parametrize("body, reason", [
    (FRESH + "sd['core.weight_hh'] = sd.pop('core.weight_hh_l0')\nreturn sd", "missing core.weight_hh_l0"),
    (FRESH + "sd['head.weight'] = torch.zeros(vocab_size, 49)\nreturn sd", "head.weight has shape (72, 49)"),
    (FRESH + "sd['embed.weight'] = sd['embed.weight'].double()\nreturn sd", "embed.weight is float64"),
    (FRESH + "sd['embed.weight'] = sd['embed.weight'].half()\nreturn sd", "embed.weight is float16"),
    (FRESH + "sd['head.bias'][3] = float('nan')\nreturn sd", "head.bias holds 1 NaN"),
    (FRESH + "sd['head.bias'][0] = float('inf')\nreturn sd", "NaN or infinite"),
    (FRESH + "return collections.OrderedDict(sd)", "collections.OrderedDict"),
    (FRESH + "return list(sd.values())", "returned a list"),
    (FRESH + "class Weights(dict):\n    pass\nreturn Weights(sd)", "expected a plain dict"),
    (FRESH + "class T(torch.Tensor):\n    pass\nsd['head.bias'] = sd['head.bias'].as_subclass(T)\nreturn sd",
     "expected a plain torch.Tensor"),
    (FRESH + "sd['head.bias'] = sd['head.bias'].tolist()\nreturn sd", "head.bias is a list"),
    (FRESH + "sd.update({f'extra{i}': torch.zeros(1) for i in range(1000)})\nreturn sd", "1007 entries"),
])
def test_a_malformed_state_dict_scores_zero_with_one_sentence(zygote, body, reason):
    result = grade(zygote, body)
    assert not result.passed
    assert reason in result.message, result.message
    assert result.message.count("\n") == 0


def test_a_huge_tensor_never_reaches_the_checker(zygote):
    """400 MB in one tensor is more than a reply may carry: the part fails, the grader is unharmed."""
    result = grade(zygote, FRESH + "sd['head.weight'] = torch.zeros(10_000, 10_000)\nreturn sd")
    assert not result.passed and result.ename == "GradingStopped", result.message


def test_weights_copied_from_the_course_model_miss_the_real_target(zygote):
    """The course's own seeded, untrained model (all that ships) is far from the held-out target."""
    result = grade(zygote, "return {k: v.detach().clone() for k, v in "
                           "char_model('gru', vocab_size, 48, embed_size=16, seed=0).state_dict().items()}", STRICT)
    assert not result.passed and "above the target 10" in result.message, result.message


def test_reading_the_held_out_text_inside_the_graded_function_is_a_forbidden_shortcut():
    """Does the 06 forbidden list charge a train_char_model that reaches the whole text (and so the held-out end)?"""
    import runpy
    from pathlib import Path

    config = Path(__file__).resolve().parent.parent / "nbgrader_config.py"

    class C(dict):
        def __getattr__(self, name):
            return self.setdefault(name, C())

    c = C()
    runpy.run_path(str(config), init_globals={"get_config": lambda: c})
    forbidden = c.TrustedExecute.forbidden["06_language_model"]
    for body in ("ids = corpus().held_out", "text = load_text()", "xs, ys = stream_windows(train_ids, 32, 64)"):
        cell = ("from course_lib.language_model import corpus, stream_windows\nfrom course_lib.data import load_text\n"
                f"def train_char_model(train_ids, vocab_size, seed):\n    {body}\n    return {{}}\n")
        found = policy_findings([(1, cell)], {"train_char_model_check": ["train_char_model"]}, forbidden)
        assert found.get("train_char_model_check"), body
    clean = "def train_char_model(train_ids, vocab_size, seed):\n    return {}\n"
    assert not policy_findings([(1, clean)], {"train_char_model_check": ["train_char_model"]}, forbidden)
