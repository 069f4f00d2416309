"""Unit tests of :mod:`course_lib.instructor.similarity`: does renaming or reformatting hide a copy, and
does the starter code every student is given count as shared?"""
from __future__ import annotations

import random

from course_lib.instructor import similarity as sim

CELL = '''def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    """One LSTM step."""
    h_prev, c_prev = hx
    gates = input @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh   # (N, 4H)
    a_i, a_f, a_g, a_o = gates.chunk(4, dim=1)
    c = torch.sigmoid(a_f) * c_prev + torch.sigmoid(a_i) * torch.tanh(a_g)
    h = torch.sigmoid(a_o) * torch.tanh(c)
    return h, c
'''
RENAMED = '''def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    """Renamed, re-commented and re-broken."""
    hp, cp = hx          # state
    z = (input @ w_ih.T + b_ih
         + hp @ w_hh.T + b_hh)
    q1, q2, q3, q4 = z.chunk(4, dim=1)
    cc = torch.sigmoid(q2) * cp + torch.sigmoid(q1) * torch.tanh(q3)
    hh = torch.sigmoid(q4) * torch.tanh(cc)
    return hh, cc
'''
STUB = '''def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    """One LSTM step."""
    # YOUR CODE HERE
    raise NotImplementedError()
'''


def _texts(source: str) -> list[str]:
    return [t.text for t in sim.normalise(source)]


def test_renamed_variables_comments_and_line_breaks_leave_the_same_tokens_where_the_code_is_the_same():
    """Only the bracket pair the copier added differs; names, comments, docstrings and layout do not count."""
    a, b = _texts(CELL), _texts(RENAMED)
    assert [t for t in b if t not in "()"] == [t for t in a if t not in "()"]
    assert "torch" not in a and "sigmoid" in a and "T" in a       # chosen names go, attributes stay


def test_a_renamed_copy_is_fully_similar_and_a_different_solution_is_not():
    a, b = sim.make_document("a", {"cell": CELL}), sim.make_document("b", {"cell": RENAMED})
    assert sim.similarity(a, b) > 0.6
    other = sim.make_document("c", {"cell": '''def lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
    H = w_hh.shape[1]
    out = []
    for k, act in enumerate((torch.sigmoid, torch.sigmoid, torch.tanh, torch.sigmoid)):
        rows = slice(k * H, (k + 1) * H)
        out.append(act(torch.nn.functional.linear(input, w_ih[rows], b_ih[rows])
                       + torch.nn.functional.linear(hx[0], w_hh[rows], b_hh[rows])))
    c = out[1] * hx[1] + out[0] * out[2]
    return out[3] * torch.tanh(c), c
'''})
    assert sim.similarity(a, other) < 0.3


def test_starter_code_is_not_a_match():
    starter = sim.starter_hashes([STUB])
    a = sim.make_document("a", {"cell": STUB}, starter)
    b = sim.make_document("b", {"cell": STUB}, starter)
    assert a.prints == {} and sim.similarity(a, b) == 0.0
    assert sim.similarity(sim.make_document("a", {"cell": STUB}), sim.make_document("b", {"cell": STUB})) == 1.0


def test_winnowing_finds_every_shared_run_of_k_plus_w_minus_1_tokens():
    """The guarantee of Schleimer et al.: any shared run of K + WINDOW - 1 tokens shares a fingerprint."""
    rng = random.Random(0)
    words = ["x", "+", "*", "(", ")", "1", "2", ".", "T", "@", "-", ","]
    for _ in range(50):
        shared = [rng.choice(words) for _ in range(sim.K + sim.WINDOW - 1)]
        left = [rng.choice(words) for _ in range(rng.randrange(40))]
        right = [rng.choice(words) for _ in range(rng.randrange(40))]
        tokens_a = [sim.Token(t, "p", 1) for t in left + shared]
        tokens_b = [sim.Token(t, "p", 1) for t in shared + right]
        assert sim.fingerprints(tokens_a).keys() & sim.fingerprints(tokens_b).keys()


def test_matching_lines_mark_the_copied_lines_only():
    extra = CELL + "\n\ndef helper(v):\n    return [v for _ in range(3)] + list(reversed([v, v, v]))\n"
    a, b = sim.make_document("a", {"cell": extra}), sim.make_document("b", {"cell": RENAMED})
    lines_a, lines_b = sim.matching_lines(a, b)
    assert {3, 4, 5, 6, 7, 8} <= lines_a["cell"] and 12 not in lines_a["cell"]
    assert {6, 7, 8, 9} <= lines_b["cell"]
