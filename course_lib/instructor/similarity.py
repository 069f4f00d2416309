"""Which submissions share code: winnowed fingerprints of normalised Python tokens.

Each document (one student's answer cells, or one piece of the answer key) is

1. tokenised with :mod:`tokenize`; comments, blank lines and line breaks inside brackets dropped;
2. normalised: every name that a student chooses (variables, parameters, functions) becomes ``V``,
   every string ``S``; keywords, operators, numbers and attribute names (``.T``, ``.chunk``) stay, so
   renaming variables or reformatting the code changes nothing;
3. cut into every run of ``k`` consecutive tokens (a *k*-gram), each hashed;
4. *winnowed* (Schleimer, Wilkerson and Aiken, "Winnowing: local algorithms for document
   fingerprinting", SIGMOD 2003): in every window of ``w`` consecutive hashes the smallest is kept
   (the rightmost on ties). Any run of at least ``w + k - 1`` tokens two documents share is then
   guaranteed to share a fingerprint; runs shorter than ``k`` never count.

The k-grams of the starter code (the released answer cells, e.g. the ``def`` line and docstring
every student is given) are removed from every document first, so an identical template is not a
match. Two documents' *similarity* is the share of the smaller one's fingerprints that the other
also has (0 to 1).

What a match proves, and what not: a high similarity says two pieces of code have the same token
sequence after renaming, over long stretches. It does not say who copied whom, or that anyone did:
a short exercise with one natural solution (an LSTM cell is ten lines) is written alike by people
who never met, and a student may have followed the book's own code. A match is a reason to look at
the two submissions side by side, never a verdict.
"""
from __future__ import annotations

import hashlib
import io
import keyword
import tokenize
from dataclasses import dataclass, field

__all__ = ["Token", "Document", "normalise", "kgram_hashes", "winnow", "fingerprints", "make_document",
           "starter_hashes", "similarity", "matching_lines", "K", "WINDOW"]

K = 10          # tokens per k-gram: the shortest shared run that can count
WINDOW = 6      # winnowing window: every shared run of K + WINDOW - 1 = 15 tokens is detected

_DROP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}


@dataclass(frozen=True)
class Token:
    """One normalised token and where it came from: ``part`` (a cell or function name) and its line."""

    text: str
    part: str
    line: int


def normalise(source: str, part: str = "") -> list[Token]:
    """The normalised tokens of ``source``; code that does not tokenise is read up to the first error."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]   # IPython magics
    out: list[Token] = []
    previous = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline):
            if tok.type in _DROP:
                continue
            if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string) and previous != ".":
                text = "V"
            elif tok.type == tokenize.STRING or tok.type in (getattr(tokenize, "FSTRING_START", -1),):
                text = "S"
            elif tok.type == tokenize.NEWLINE:
                text = ";"
            elif tok.type == tokenize.INDENT:
                text = "{"
            elif tok.type == tokenize.DEDENT:
                text = "}"
            else:
                text = tok.string
            previous = tok.string
            out.append(Token(text, part, tok.start[0]))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def _hash(tokens: list[Token]) -> int:
    return int.from_bytes(hashlib.blake2b(" ".join(t.text for t in tokens).encode(), digest_size=8).digest(), "big")


def kgram_hashes(tokens: list[Token], k: int = K) -> list[int]:
    return [_hash(tokens[i:i + k]) for i in range(len(tokens) - k + 1)]


def winnow(hashes: list[int], window: int = WINDOW) -> list[int]:
    """Positions of the fingerprints: the smallest hash of every window of ``window`` (the rightmost on ties)."""
    if not hashes:
        return []
    if len(hashes) <= window:
        return [min(range(len(hashes)), key=lambda i: (hashes[i], -i))]
    return sorted({min(range(start, start + window), key=lambda i: (hashes[i], -i))
                   for start in range(len(hashes) - window + 1)})


def fingerprints(tokens: list[Token], k: int = K, window: int = WINDOW,
                 exclude: frozenset[int] = frozenset()) -> dict[int, list[int]]:
    """Winnowed fingerprints of one part: ``{hash: [positions of the k-grams that have it]}``, ``exclude`` left out."""
    hashes = kgram_hashes(tokens, k)
    keep: dict[int, list[int]] = {}
    for i in winnow(hashes, window):
        if hashes[i] not in exclude:
            keep.setdefault(hashes[i], []).append(i)
    return keep


@dataclass
class Document:
    """One student's answer cells (or one piece of the answer key), ready to compare."""

    name: str
    sources: dict[str, str]                       # part -> source, as written
    tokens: list[Token] = field(default_factory=list)
    prints: dict[int, list[int]] = field(default_factory=dict)
    grams: list[int | None] = field(default_factory=list)   # hash of the k-gram at each token (None: starter
                                                            # code, or the k-gram would run past its cell)
    starter: list[bool] = field(default_factory=list)       # is the token part of the starter code?


def make_document(name: str, sources: dict[str, str], starter: frozenset[int] = frozenset(),
                  k: int = K, window: int = WINDOW) -> Document:
    """Tokenise every part of one document and fingerprint the whole (``starter``: k-gram hashes to ignore)."""
    doc = Document(name, dict(sources))
    for part, source in sources.items():            # k-grams never straddle two cells
        tokens = normalise(source, part)
        offset = len(doc.tokens)
        for h, positions in fingerprints(tokens, k, window, starter).items():
            doc.prints.setdefault(h, []).extend(offset + i for i in positions)
        hashes = kgram_hashes(tokens, k)
        doc.grams += [None if h in starter else h for h in hashes] + [None] * (len(tokens) - len(hashes))
        covered = [False] * len(tokens)
        for i, h in enumerate(hashes):
            if h in starter:
                covered[i:i + k] = [True] * k
        doc.starter += covered
        doc.tokens += tokens
    return doc


def starter_hashes(sources: list[str], k: int = K) -> frozenset[int]:
    """Every k-gram hash of the starter code (all of them, not only the winnowed ones)."""
    return frozenset(h for source in sources for h in kgram_hashes(normalise(source), k))


def similarity(a: Document, b: Document) -> float:
    """The share of the smaller document's fingerprints that the other has too (0 when either has none)."""
    if not a.prints or not b.prints:
        return 0.0
    shared = len(a.prints.keys() & b.prints.keys())
    return shared / min(len(a.prints), len(b.prints))


def matching_lines(a: Document, b: Document, k: int = K) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """The source lines, by part, of each document's tokens in a k-gram both contain (starter code left out)."""
    shared = (set(a.grams) & set(b.grams)) - {None}

    def lines(doc: Document) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for i, h in enumerate(doc.grams):
            if h in shared:
                for j in range(i, min(i + k, len(doc.tokens))):
                    if not doc.starter[j]:
                        out.setdefault(doc.tokens[j].part, set()).add(doc.tokens[j].line)
        return out

    return lines(a), lines(b)
