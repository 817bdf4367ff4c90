"""Spans -> character ranges -> token rewards (METHODS §2.2).

1. Each span (a quote of the answer and a label) is located in the answer: at its given character
   offset when it has one and the answer has the quote there; else exactly; else after
   normalising whitespace runs, curly quotes and case; else fuzzily (rapidfuzz partial ratio
   >= ``fuzzy_threshold``, quotes of 4+ characters only, the match widened to whole words). A span found nowhere is reported as
   ``not_found`` and labels nothing: it is never placed somewhere else.
2. Repeated spans: a span with an offset labels that occurrence only; a span without one labels
   EVERY occurrence of its text (exact and normalised matches), since nothing says which one the
   critique meant. Fuzzy matches label the single best-matching region.
3. Character ranges become token ranges through the token offsets of the answer: the tokenizer's
   offset mapping, or, for generated ids, the offsets of the ids themselves (incremental decoding),
   so the answer is never re-tokenised in pieces.
4. delta_t = +1 if token t overlaps a positive span, -1 if it overlaps a negative one (negative wins),
   else 0; tokens with no letter or digit inside a span of words get 0 (``zero_punctuation``, the
   reference's default). A span that is itself only punctuation (a comma the instructions forbid)
   keeps its label on its tokens: there the punctuation is what the critique is about.

Example::

    >>> rewards, report = token_rewards("Tom is a 27-year-old pilot.", [("Tom", "positive"), ("27", "negative")], tok)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from rapidfuzz import fuzz

from rltf.errors import SpanError
from rltf.feedback.base import Span

if TYPE_CHECKING:
    import torch

MATCH_KINDS = ("offset", "exact", "normalized", "fuzzy", "not_found")
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "}


@dataclass
class SpanMatch:
    quote: str
    label: str
    kind: str  # one of MATCH_KINDS
    ranges: list[tuple[int, int]] = field(default_factory=list)  # character ranges in the answer
    score: float = 0.0  # similarity in [0, 100] (100 for exact matches)


@dataclass
class AlignmentReport:
    matches: list[SpanMatch]
    n_tokens: int
    n_labelled: int  # tokens with a non-zero reward

    @property
    def counts(self) -> dict[str, int]:
        return {k: sum(m.kind == k for m in self.matches) for k in MATCH_KINDS}

    @property
    def labelled_fraction(self) -> float:
        return self.n_labelled / self.n_tokens if self.n_tokens else 0.0

    @property
    def not_found(self) -> list[str]:
        return [m.quote for m in self.matches if m.kind == "not_found"]

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "labelled_fraction": self.labelled_fraction, "n_tokens": self.n_tokens,
                "matches": [asdict(m) for m in self.matches]}


# -- locating spans in the answer ------------------------------------------------------------
def _normalize(text: str) -> tuple[str, list[int]]:
    """Whitespace runs -> one space, curly quotes -> straight, lower case; with each output
    character's index in ``text``."""
    out, index = [], []
    prev_space = False
    for i, ch in enumerate(text):
        ch = _QUOTES.get(ch, ch)
        if ch.isspace():
            if prev_space:
                continue
            ch, prev_space = " ", True
        else:
            prev_space = False
            low = ch.lower()
            ch = low if len(low) == 1 else ch
        out.append(ch)
        index.append(i)
    return "".join(out), index


def _all_occurrences(text: str, quote: str) -> list[int]:
    found, i = [], text.find(quote)
    while i >= 0:
        found.append(i)
        i = text.find(quote, i + max(len(quote), 1))
    return found


def locate(answer: str, quote: str, start: int | None = None, fuzzy_threshold: float = 90.0) -> SpanMatch:
    """Where ``quote`` sits in ``answer`` (see the module docstring for the rules)."""
    if start is not None and answer[start:start + len(quote)] == quote:
        return SpanMatch(quote, "", "offset", [(start, start + len(quote))], 100.0)
    hits = _all_occurrences(answer, quote)
    if hits:
        return SpanMatch(quote, "", "exact", [(i, i + len(quote)) for i in hits], 100.0)
    norm_answer, index = _normalize(answer)
    norm_quote = _normalize(quote)[0].strip()
    if norm_quote:
        hits = _all_occurrences(norm_answer, norm_quote)
        if hits:
            ranges = [(index[i], index[i + len(norm_quote) - 1] + 1) for i in hits]
            return SpanMatch(quote, "", "normalized", ranges, 100.0)
    if fuzzy_threshold <= 100 and len(norm_quote) >= 4 and norm_answer:
        best = fuzz.partial_ratio_alignment(norm_quote, norm_answer)
        if best is not None and best.score >= fuzzy_threshold and best.dest_end > best.dest_start:
            lo, hi = best.dest_start, best.dest_end
            while lo < hi and norm_answer[lo] == " ":
                lo += 1
            while hi > lo and norm_answer[hi - 1] == " ":
                hi -= 1
            while lo > 0 and norm_answer[lo - 1].isalnum() and norm_answer[lo].isalnum():
                lo -= 1  # snap to word boundaries: the window rapidfuzz returns can cut a word
            while hi < len(norm_answer) and norm_answer[hi].isalnum() and norm_answer[hi - 1].isalnum():
                hi += 1
            if hi > lo:
                return SpanMatch(quote, "", "fuzzy", [(index[lo], index[hi - 1] + 1)], float(best.score))
    return SpanMatch(quote, "", "not_found", [], 0.0)


# -- token offsets ---------------------------------------------------------------------------
def token_offsets(answer: str, tokenizer, token_ids: Sequence[int] | None = None) -> tuple[list[int], list[tuple[int, int]]]:
    """(token ids, character range of each token in ``answer``).

    Without ``token_ids`` the answer is tokenised once and the tokenizer's offset mapping is used.
    With ``token_ids`` (e.g. the sampled tokens), offsets come from decoding growing prefixes of
    the ids; a token that ends inside a multi-byte character shares the range of the token that
    completes it. Special tokens (end of turn) get an empty range. The ids must decode to ``answer``.
    """
    if token_ids is None and getattr(tokenizer, "is_fast", False):
        enc = tokenizer(answer, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    ids = list(token_ids) if token_ids is not None else tokenizer(answer, add_special_tokens=False)["input_ids"]
    full = tokenizer.decode(ids, skip_special_tokens=True)
    if full != answer:
        raise SpanError(f"the token ids decode to {full[:60]!r}..., not to the answer {answer[:60]!r}...")
    offsets: list[tuple[int, int]] = []
    done, pending = 0, []
    for k in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:k], skip_special_tokens=True)
        if full.startswith(text):
            end = max(len(text), done)
            for j in pending:
                offsets[j] = (done, end)
            offsets.append((done, end))
            pending, done = [], end
        else:  # an incomplete character: wait for the token that completes it
            pending.append(k - 1)
            offsets.append((done, done))
    return ids, offsets


# -- rewards ---------------------------------------------------------------------------------
def token_rewards(answer: str, spans: Iterable[Any], tokenizer, token_ids: Sequence[int] | None = None, *,
                  fuzzy_threshold: float = 90.0, zero_punctuation: bool = True) -> tuple[torch.Tensor, AlignmentReport]:
    """Per-token rewards of ``answer`` from labelled spans -> (rewards [T] float32, report).

    ``spans``: :class:`~rltf.feedback.Span` objects (dicts ``{"quote", "label", "start"?}`` and
    ``(quote, label)`` pairs are read with :meth:`Span.coerce`). T is the number of tokens of ``answer`` (of ``token_ids`` when
    given). See the module docstring for matching rules.
    """
    ids, offsets = token_offsets(answer, tokenizer, token_ids)
    matches = []
    for span in spans:
        span = Span.coerce(span)
        match = locate(answer, span.quote, span.start, fuzzy_threshold)
        match.label = span.label
        matches.append(match)
    import torch  # here: locating spans needs no torch

    rewards = torch.zeros(len(ids), dtype=torch.float32)
    wordy = [any(ch.isalnum() for s, e in m.ranges for ch in answer[s:e]) for m in matches]
    for t, (a, b) in enumerate(offsets):
        if b <= a:
            continue
        punctuation = zero_punctuation and not any(ch.isalnum() for ch in answer[a:b])
        hit = {m.label for m, words in zip(matches, wordy) for s, e in m.ranges
               if a < e and s < b and not (punctuation and words)}
        rewards[t] = -1.0 if "negative" in hit else (1.0 if "positive" in hit else 0.0)
    report = AlignmentReport(matches, len(ids), int((rewards != 0).sum()))
    return rewards, report
