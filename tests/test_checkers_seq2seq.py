"""course_lib.checkers.seq2seq: does each check pass right answers (also unusual ones) and name each known mistake?

The wrong implementations here are written the way a student would write them, independently of the
checker's own mistaken variants, so a test fails if a variant stops describing its mistake.
"""
from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from course_lib import seq2seq as s2s
from course_lib.checkers import (CheckFailed, check_additive_attention, check_beam_search, check_decode_step,
                                 check_seq2seq_model)
from course_lib.checkers import seq2seq as cs
from course_lib.data.transduction import PAD, Seq2SeqBatch

torch.set_num_threads(1)


def _fails(check, fn, *pieces, **kwargs) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        check(fn, **kwargs)
    for piece in pieces:
        assert piece in str(info.value), str(info.value)
    return info.value


def _labels(catalogue) -> set[str]:
    return {m.label for m in catalogue}


# ----------------------------------------------------------------------------- additive attention, student-style

def attention(query, keys, mask, w_query, w_key, v, *, mistake=None):
    """Additive attention as a student writes it, with one named mistake switched on by ``mistake``."""
    if mistake == "swap":
        w_query, w_key = w_key, w_query
    hidden = query @ w_query.T
    hidden = hidden.unsqueeze(1) + keys @ w_key.T                  # (N, S, A)
    if mistake != "no_tanh":
        hidden = torch.tanh(hidden)
    scores = hidden.sum(-1) if mistake == "no_v" else (hidden * v).sum(-1)
    if mask is not None and mistake not in ("after", "unmasked"):
        scores = scores.masked_fill(~mask, 0.0 if mistake == "zero" else float("-inf"))
    if mistake == "no_softmax":
        weights = scores
    else:
        weights = F.softmax(scores, dim=0 if mistake == "batch_axis" else 1)
    if mask is not None and mistake == "after":
        weights = weights * mask
    values = query.unsqueeze(1).expand_as(keys) if mistake == "query_context" else keys
    context = torch.einsum("ns,nsh->nh", weights, values)
    return context, weights


def attention_large_fill(query, keys, mask, w_query, w_key, v):
    """A valid variant: padding gets -1e9 instead of -inf, the scores via einsum."""
    e = torch.einsum("nsa,a->ns", torch.tanh((query @ w_query.T)[:, None] + keys @ w_key.T), v)
    if mask is not None:
        e = torch.where(mask, e, torch.full_like(e, -1e9))
    w = torch.exp(e - e.max(dim=1, keepdim=True).values)
    w = w / w.sum(dim=1, keepdim=True)
    return torch.bmm(w[:, None, :], keys)[:, 0], w


def test_additive_attention_right_answers_pass(capsys):
    check_additive_attention(attention)
    check_additive_attention(attention_large_fill, seed=11)
    assert "correct on 3 random cases" in capsys.readouterr().out


ATTENTION_MISTAKES = [
    ("after", "the padding mask is applied after the softmax"),
    ("unmasked", "the padding is not masked"),
    ("zero", "padded scores are set to 0 instead of -inf"),
    ("batch_axis", "the softmax runs over the wrong axis (the batch)"),
    ("no_softmax", "the softmax is missing"),
    ("no_tanh", "the tanh inside the score is missing"),
    ("no_v", "the scores are not projected by v"),
    ("swap", "w_query and w_key look swapped"),
    ("query_context", "the context is computed from the decoder state (the query) instead of the encoder states"),
]


def test_every_attention_mistake_in_the_catalogue_is_tried_here():
    assert {next(m.label for m in cs.ADDITIVE_ATTENTION if m.label.startswith(label)) for _, label in
            ATTENTION_MISTAKES} == _labels(cs.ADDITIVE_ATTENTION)


@pytest.mark.parametrize("mistake, label", ATTENTION_MISTAKES)
def test_additive_attention_mistakes_are_named(mistake, label):
    """Is each catalogued mistake recognised in a student's code, named in the message and handed on as data?"""
    exc = _fails(check_additive_attention, lambda *a: attention(*a, mistake=mistake), label)
    assert len(exc.mistakes) == 1 and exc.mistakes[0].startswith(label)


def test_an_inverted_mask_is_pointed_at():
    """A mask read the wrong way round leaves a row with no finite score: does the message say where to look?"""
    def inverted(query, keys, mask, w_query, w_key, v):
        e = torch.tanh((query @ w_query.T)[:, None] + keys @ w_key.T) @ v
        if mask is not None:
            e = e.masked_fill(mask, float("-inf"))
        w = e.softmax(1)
        return (w[:, :, None] * keys).sum(1), w
    _fails(check_additive_attention, inverted, "non-finite", "is your mask inverted?")


def test_additive_attention_wrong_shape_is_one_sentence():
    exc = _fails(check_additive_attention, lambda *a: attention(*a)[0], "expected a tuple (context, weights)")
    assert "\n" not in str(exc)


def test_attention_variant_at_its_defaults_is_the_reference():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    wq, wk, v = (torch.randn(*s, generator=g, dtype=torch.float64) for s in ((6, 4), (6, 4), (6,)))
    mask = torch.arange(5)[None] < torch.tensor([5, 2, 1])[:, None]
    for got, want in zip(cs.attention_variant(q, k, mask, wq, wk, v), s2s.additive_attention(q, k, mask, wq, wk, v)):
        assert torch.allclose(got, want)


# ----------------------------------------------------------------------------- one decoder step

def step(y_prev, s_prev, enc_states, mask, weights, *, mistake=None, attend=None):
    """One decoder step as a student writes it, with nn.GRUCell loaded from the weights."""
    emb = F.embedding(y_prev, weights["tgt_embed.weight"])
    context, alpha = attention(s_prev, enc_states, mask, weights["w_query"], weights["w_key"], weights["v"],
                               mistake=attend)
    E, H = emb.shape[1], s_prev.shape[1]
    cell = torch.nn.GRUCell(E + H, H)
    cell.load_state_dict({k[len("decoder."):]: v for k, v in weights.items() if k.startswith("decoder.")})
    x = torch.cat([context, emb] if mistake == "ctx_emb" else [emb, context], dim=1)
    s = cell(x, s_prev)
    s_out = s_prev if mistake == "old_state" else s
    o = torch.cat([context, s_out] if mistake == "ctx_state" else [s_out, context], dim=1)
    logits = F.linear(o, weights["out.weight"], weights["out.bias"])
    if mistake == "softmax":
        logits = logits.softmax(-1)
    return logits, s.detach(), alpha


def test_decode_step_right_answers_pass(capsys):
    check_decode_step(step)
    check_decode_step(step, seed=9)
    assert "correct on 3 random cases" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, label", [
    ("ctx_emb", "the embedding and the context are concatenated in the wrong order"),
    ("old_state", "the output layer reads the previous state s_{t-1} instead of the new state s_t"),
    ("ctx_state", "the output layer reads [context; s_t] instead of [s_t; context]"),
    ("softmax", "the logits went through a softmax"),
])
def test_decode_step_mistakes_are_named(mistake, label):
    exc = _fails(check_decode_step, lambda *a: step(*a, mistake=mistake), label)
    assert exc.mistakes == (next(m.label for m in cs.DECODE_STEP if m.label.startswith(label)),)


@pytest.mark.parametrize("attend, label", ATTENTION_MISTAKES)
def test_an_attention_mistake_inside_the_step_is_named_and_sent_back_to_part_1(attend, label):
    """Does a decoder step that calls a wrong additive_attention say so, and point at Part 1?"""
    _fails(check_decode_step, lambda *a: step(*a, attend=attend), f"inside the step, {label}",
           "Fix additive_attention first (Part 1)")


def test_decode_step_with_attention_after_the_update_is_told_where_to_look():
    """The query must be s_{t-1}: a step that attends from the new state gets the weights wrong, with a pointer."""
    def late(y_prev, s_prev, enc_states, mask, weights):
        _, s, _ = step(y_prev, s_prev, enc_states, mask, weights)
        logits, _, alpha = step(y_prev, s, enc_states, mask, weights)
        return logits, s, alpha
    _fails(check_decode_step, late, "PREVIOUS state s_prev as the query")


def test_decode_step_variant_at_its_defaults_is_the_reference():
    for k, sizes in enumerate(cs._STEP_CASES):
        case = cs._step_case(0, k, *sizes)
        got = cs.decode_step_variant(*case.args64().values())
        assert all(torch.allclose(g, e) for g, e in zip(got, case.expected))


# ----------------------------------------------------------------------------- beam search

def beam(log_probs, bos, eos, beam_width, max_len, *, width=None, add=True, eos_ends=True, first=False,
         per_token=False, later_ties=False, steps=None):
    """Beam search as a student writes it, on tensors, with one mistake switched on by a keyword."""
    k = width or beam_width
    beams = [((), 0.0, 0.0)]                 # tokens, rank, total log-probability
    done = []
    for t in range(max_len if steps is None else steps):
        ext = []
        for toks, _, total in beams:
            lp = log_probs[t, toks[-1] if toks else bos]
            for tok in range(lp.shape[0]):
                ext.append((toks + (tok,), (total + float(lp[tok])) if add else float(lp[tok]),
                            total + float(lp[tok])))
        ext.sort(key=lambda h: h[1], reverse=True)
        beams = []
        for h in ext[:k]:
            if eos_ends and h[0][-1] == eos:
                if first:
                    return list(h[0]), h[2]
                done.append(h)
            else:
                beams.append(h)
        if not beams or (done and not per_token and max(d[1] for d in done) >= max(b[1] for b in beams)):
            beams = []
            break
    pool = done + beams
    score = (lambda h: h[1] / len(h[0])) if per_token else (lambda h: h[1])
    best = None
    for h in pool:
        if best is None or score(h) > score(best) or (later_ties and score(h) == score(best)):
            best = h
    return list(best[0]), best[2]


def beam_topk(log_probs, bos, eos, beam_width, max_len):
    """A valid variant on tensors with topk; returns the tokens as a tensor and the score as a 0-d tensor."""
    tokens = torch.empty(1, 0, dtype=torch.long)
    scores = torch.zeros(1, dtype=torch.float64)
    finished = []
    for t in range(max_len):
        last = tokens[:, -1] if tokens.shape[1] else torch.full((tokens.shape[0],), bos)
        total = scores[:, None] + log_probs[t, last]             # (B, V)
        best, flat = total.flatten().topk(min(beam_width, total.numel()))
        rows, toks = flat // total.shape[1], flat % total.shape[1]
        ext = torch.cat([tokens[rows], toks[:, None]], dim=1)
        end = toks == eos
        finished += [(ext[i], best[i]) for i in end.nonzero().flatten().tolist()]
        tokens, scores = ext[~end], best[~end]
        if tokens.shape[0] == 0 or (finished and max(float(s) for _, s in finished) >= float(scores.max())):
            break
    else:
        finished += list(zip(tokens, scores))
    out = max(finished, key=lambda h: float(h[1]))
    return out[0], out[1]


def test_beam_search_right_answers_pass(capsys):
    check_beam_search(beam)
    check_beam_search(beam_topk, seed=3)
    assert "the same best hypothesis as the reference on 6 tables" in capsys.readouterr().out


BEAM_MISTAKES = [
    (dict(width=1), "only one hypothesis is kept at each step: this is greedy decoding"),
    (dict(add=False), "the log-probabilities are not added up"),
    (dict(eos_ends=False), "EOS does not finish a hypothesis"),
    (dict(first=True), "the search returns the first hypothesis that finishes"),
    (dict(per_token=True), "compared by their score divided by their length"),
    (dict(later_ties=True), "of two hypotheses with the same score the one found last is returned"),
]


@pytest.mark.parametrize("mistake, label", BEAM_MISTAKES)
def test_beam_search_mistakes_are_named(mistake, label):
    exc = _fails(check_beam_search, lambda *a: beam(*a, **mistake), label)
    assert len(exc.mistakes) == 1 and label in exc.mistakes[0]


def test_beam_search_one_step_short_is_named():
    _fails(check_beam_search, lambda lp, b, e, w, n: beam(lp, b, e, w, n, steps=n - 1),
           "the search stops one step early")


def test_every_beam_mistake_in_the_catalogue_is_tried_here():
    tried = [label for _, label in BEAM_MISTAKES] + ["the search stops one step early"]
    assert all(any(t in m.label for t in tried) for m in cs.BEAM_SEARCH)


def test_beam_search_with_bos_in_the_tokens_is_told_what_to_return():
    exc = _fails(check_beam_search, lambda lp, b, e, w, n: ([b] + beam(lp, b, e, w, n)[0], beam(lp, b, e, w, n)[1]),
                 "the reference finds")
    assert exc.mistakes == ()


def test_beam_search_returning_every_hypothesis_is_told_to_return_the_best():
    _fails(check_beam_search, lambda *a: [beam(*a), beam(*a)], "return only the best one")


def test_beam_search_tokens_as_numpy_or_tensor_integers_are_read():
    import numpy as np
    check_beam_search(lambda *a: ([np.int64(t) for t in beam(*a)[0]], np.float64(beam(*a)[1])))
    check_beam_search(lambda *a: ([torch.tensor(t) for t in beam(*a)[0]], beam(*a)[1]))


def test_a_decode_step_waiting_for_part_1_says_so():
    def waiting(query, keys, mask, w_query, w_key, v):
        raise NotImplementedError()

    def step_on_unwritten_attention(y_prev, s_prev, enc_states, mask, weights):
        waiting(s_prev, enc_states, mask, weights["w_query"], weights["w_key"], weights["v"])
    _fails(check_decode_step, step_on_unwritten_attention, "not implemented yet", "Part 1 must be written first")


def test_beam_search_right_tokens_wrong_score_says_so():
    _fails(check_beam_search, lambda *a: (beam(*a)[0], 0.0), "the right tokens", "sum of their log-probabilities")


def test_beam_variant_at_its_defaults_is_the_reference():
    for _, args in cs._beam_cases(4):
        assert cs.beam_variant(**args) == cs._reference_beam(**args)


def test_each_hand_made_table_shows_what_it_says():
    """Beam beats greedy on the first table; the tie and the run-out tables have the answers their comments give."""
    (_, greedy_loses), (_, tie), (_, run_out) = cs._beam_cases(0)[:3]
    assert cs._reference_beam(**greedy_loses) == ([4, 4, 2], -1.0)
    assert cs.beam_variant(**greedy_loses, width=1) == ([3, 2], -2.25)
    assert cs._reference_beam(**tie) == ([3, 1], -2.0)
    assert cs.beam_variant(**tie, ties="last") == ([4, 4, 1], -2.0)
    assert cs._reference_beam(**run_out) == ([3, 3, 1], -1.5)


# ----------------------------------------------------------------------------- training to a target

def train(src, src_len, tgt_in, tgt_out, seed, *, steps=200):
    model = s2s.Seq2Seq(cs.exercise_config(), seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for k in range(steps):
        rows = slice(64 * k, 64 * (k + 1))
        batch = Seq2SeqBatch(src[rows], src_len[rows], tgt_in[rows], tgt_out[rows])
        logits = model(batch)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_a_trained_model_reaches_the_target(capsys):
    check_seq2seq_model(train)
    assert "fresh strings exactly (target 80%)" in capsys.readouterr().out


def test_an_untrained_model_misses_the_target_with_accuracy_by_length():
    _fails(check_seq2seq_model, lambda *a: train(*a, steps=0), "below the target 80%", "by source length: 1:")


def test_returning_the_state_dict_as_it_is_is_refused_with_the_fix():
    _fails(check_seq2seq_model, lambda *a: OrderedDict(train(*a, steps=0)), "plain dict", "state_dict().items()")


def test_weights_of_a_model_without_attention_are_refused_by_name():
    def plain(src, src_len, tgt_in, tgt_out, seed):
        config = s2s.Seq2SeqConfig(vocab_size=9, embed_size=16, hidden_size=32, attention=False)
        return {k: v.detach().clone() for k, v in s2s.Seq2Seq(config, seed=seed).state_dict().items()}
    _fails(check_seq2seq_model, plain, "missing w_query, w_key, v")


def test_the_held_out_strings_cannot_be_regenerated_from_what_the_function_receives():
    """Is the held-out seed unrelated to the seeds the student's function gets (the training pairs' and its own)?"""
    seen = {}
    def spy(src, src_len, tgt_in, tgt_out, seed):
        seen.update(src=src, seed=seed)
        return train(src, src_len, tgt_in, tgt_out, seed, steps=0)
    with pytest.raises(CheckFailed):
        check_seq2seq_model(spy, seed=5)
    train_set, held_out = cs.task_data(5)
    assert torch.equal(seen["src"], train_set.src)
    assert seen["seed"] not in (5, cs.derived_seed(5, "held-out"), cs.derived_seed(5, "train"))
    assert len({cs.derived_seed(5, p) for p in ("train", "held-out", "model")}) == 3
    assert held_out.src.shape[0] == cs.N_HELD_OUT and int(held_out.src_len.max()) <= cs.MAX_LEN


def test_the_target_is_far_above_chance():
    """An untrained model gets few right, so the 80% target measures training."""
    train_set, held_out = cs.task_data(0)
    model = cs.exercise_model().eval()
    pred, _ = model.greedy(held_out.src, held_out.src_len, held_out.tgt_out.shape[1])
    assert float(s2s.sequence_correct(pred, held_out.tgt_out).float().mean()) < 0.05 < cs.TARGET_ACCURACY


# ----------------------------------------------------------------------------- the shortcuts the assignment forbids

def _forbidden_07() -> list[str]:
    import runpy
    from pathlib import Path

    class C(dict):
        def __getattr__(self, name):
            return self.setdefault(name, C())

    c = C()
    runpy.run_path(str(Path(__file__).resolve().parent.parent / "nbgrader_config.py"),
                   init_globals={"get_config": lambda: c})
    return c.TrustedExecute.forbidden["07_seq2seq"]


@pytest.mark.parametrize("grade_id, fn, body", [
    ("additive_attention_check", "additive_attention(query, keys, mask, w_query, w_key, v)",
     "return seq2seq.additive_attention(query, keys, mask, w_query, w_key, v)"),
    ("decode_step_check", "decode_step(y_prev, s_prev, enc_states, mask, weights)",
     "return Seq2Seq(Seq2SeqConfig(9)).decode_step(y_prev, s_prev, None)"),
    ("beam_search_check", "beam_search(log_probs, bos, eos, beam_width, max_len)",
     "return bs(lambda t, s: (log_probs[0, t], s), None, bos=bos, eos=eos, beam_width=beam_width, max_len=max_len)"),
])
def test_calling_the_course_answer_key_is_a_forbidden_shortcut(grade_id, fn, body):
    """Does the 07 forbidden list charge a graded function that hands its work to course_lib.seq2seq?"""
    from course_lib.grading.policy import policy_findings

    head = ("from course_lib import seq2seq\nfrom course_lib.seq2seq import Seq2Seq, Seq2SeqConfig\n"
            "from course_lib.seq2seq import beam_search as bs\n")
    name = fn.split("(")[0]
    cell = f"{head}def {fn}:\n    {body}\n"
    assert policy_findings([(1, cell)], {grade_id: [name]}, _forbidden_07()).get(grade_id), body
    clean = f"{head}def {fn}:\n    return None\n"
    assert not policy_findings([(1, clean)], {grade_id: [name]}, _forbidden_07())


def test_training_the_course_model_is_allowed():
    """Part 4 builds and calls the course's Seq2Seq: the forbidden list must not charge that."""
    from course_lib.grading.policy import policy_findings

    cell = ("from course_lib.seq2seq import Seq2Seq, Seq2SeqConfig\nfrom course_lib.data.transduction import "
            "Seq2SeqBatch\ndef train_seq2seq(src, src_len, tgt_in, tgt_out, seed):\n"
            "    model = Seq2Seq(Seq2SeqConfig(vocab_size=9, embed_size=16, hidden_size=32), seed=seed)\n"
            "    model(Seq2SeqBatch(src, src_len, tgt_in, tgt_out)).sum().backward()\n"
            "    return {k: v.detach().clone() for k, v in model.state_dict().items()}\n")
    assert not policy_findings([(1, cell)], {"train_seq2seq_check": ["train_seq2seq"]}, _forbidden_07())
