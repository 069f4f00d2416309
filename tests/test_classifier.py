"""Tests of course_lib.classifier and course_lib.data.sentences: a padded, packed text classifier."""
from __future__ import annotations

import doctest

import pytest
import torch

from course_lib.classifier import TextClassifier, keras_classifier
from course_lib.convert import keras_to_torch
from course_lib.data import CharVocab, load_text, sentences
from course_lib.data.sentences import PAD_ID, encode_padded, question_dataset


def test_questions_are_labelled_from_the_text_and_balanced():
    """Is every label 1 sentence a question in the corpus, the final mark removed, half the set questions?"""
    data = question_dataset(max_chars=120, seed=0)
    text = " ".join(load_text().split())
    assert data.labels.float().mean() == 0.5
    for body, label in list(zip(data.texts, data.labels.tolist()))[:60]:
        assert body[-1:] not in (".", "!", "?")
        assert len(body) <= 120
        if label:
            assert body + "?" in text
    again, other = question_dataset(max_chars=120, seed=0), question_dataset(max_chars=120, seed=1)
    assert again.texts == data.texts and torch.equal(again.labels, data.labels)
    assert other.texts != data.texts


def test_encode_padded_pads_with_the_reserved_id():
    """Are character ids shifted by one, so that 0 only ever means padding?"""
    vocab = CharVocab(load_text())
    ids, lengths = encode_padded(["Who", "a"], vocab)
    assert lengths.tolist() == [3, 1]
    assert (ids[0] > 0).all() and ids[1, 1:].eq(PAD_ID).all()
    assert torch.equal(ids[0] - 1, vocab.encode("Who"))
    with pytest.raises(ValueError, match="at least one character"):
        encode_padded(["ok", ""], vocab)


def _batch():
    vocab = CharVocab(load_text())
    data = question_dataset(seed=1)
    return vocab, encode_padded(data.texts[:12], vocab)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_final_state_ignores_the_padding(bidirectional):
    """Is each sentence's final state (both directions) the same alone and inside a padded batch?"""
    vocab, (ids, lengths) = _batch()
    model = TextClassifier(vocab.size + 1, hidden_size=8, bidirectional=bidirectional, num_layers=2, seed=0)
    model.eval()
    with torch.no_grad():
        batch = model.final_state(ids, lengths)
        for i in range(len(lengths)):
            n = int(lengths[i])
            alone = model.final_state(ids[i:i + 1, :n], lengths[i:i + 1])
            assert torch.allclose(batch[i], alone[0], atol=1e-5)


def test_without_packing_the_padding_changes_the_answer():
    """Run over the padding, does a short sentence's final state differ from its state alone?"""
    vocab, (ids, lengths) = _batch()
    model = TextClassifier(vocab.size + 1, hidden_size=8, pack=False, seed=0)
    i = int(lengths.argmin())
    with torch.no_grad():
        batch = model.final_state(ids, lengths)[i]
        alone = model.final_state(ids[i:i + 1, : lengths[i]], lengths[i:i + 1])[0]
    assert not torch.allclose(batch, alone, atol=1e-3)


def test_keras_masking_and_torch_packing_give_the_same_logits():
    """With the Keras model's weights copied over, do mask_zero and packing agree on a padded batch?"""
    vocab, (ids, lengths) = _batch()
    keras_model = keras_classifier(vocab.size + 1, embed_size=6, hidden_size=8)
    model = TextClassifier(vocab.size + 1, embed_size=6, hidden_size=8)
    keras_to_torch(keras_model.layers[0], model.embed)
    keras_to_torch(keras_model.layers[1], model.lstm)
    keras_to_torch(keras_model.layers[2], model.head)
    with torch.no_grad():
        ours = model((ids, lengths))
    theirs = torch.as_tensor(keras_model(ids).detach().cpu().numpy())
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_bad_lengths_say_what_was_expected():
    """Does a length beyond the padded width raise a sentence naming the allowed range?"""
    model = TextClassifier(10, hidden_size=4)
    with pytest.raises(ValueError, match="between 1 and L = 3"):
        model((torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 4])))
    with pytest.raises(ValueError, match="dropout must be in"):
        TextClassifier(10, dropout=1.5)


def test_docstring_examples_still_run():
    """Do the worked examples in the sentences module still describe what the code does?"""
    result = doctest.testmod(sentences, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
