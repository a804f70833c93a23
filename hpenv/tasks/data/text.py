"""Text to fixed-length token-id tensors: tokenizer, vocabulary, padding."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

PAD_ID = 0
OOV_ID = 1
_TOKEN = re.compile(r"[a-z0-9']+")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers; HTML line breaks count as spaces.

    >>> tokenize("A <br />great film, isn't it?")
    ['a', 'great', 'film', "isn't", 'it']
    """
    return _TOKEN.findall(_HTML_BREAK.sub(" ", text).lower())


def build_vocab(texts: Iterable[str], size: int) -> list[str]:
    """The ``size - 2`` most frequent words after ``<pad>`` (id 0) and ``<unk>`` (id 1).

    Ties are broken alphabetically, so the vocabulary does not depend on order.
    """
    counts = Counter(word for text in texts for word in tokenize(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ["<pad>", "<unk>"] + [word for word, _ in ranked[: size - 2]]


def encode(texts: Iterable[str], vocab: Sequence[str]) -> list[np.ndarray]:
    """Map each text to its token ids; unknown words become `OOV_ID`."""
    index = {word: i for i, word in enumerate(vocab)}
    return [np.fromiter((index.get(w, OOV_ID) for w in tokenize(t)), dtype=np.int64) for t in texts]


def pad_sequences(
    sequences: Sequence[np.ndarray], seq_len: int, vocab_size: int, oov_id: int = OOV_ID
) -> np.ndarray:
    """Truncate (keeping the start) or left-pad with `PAD_ID`; ids >= vocab_size become oov_id.

    >>> pad_sequences([np.array([5, 6]), np.array([1, 2, 3, 4])], 3, vocab_size=5)
    array([[0, 1, 1],
           [1, 2, 3]], dtype=int32)
    """
    out = np.full((len(sequences), seq_len), PAD_ID, dtype=np.int32)
    for row, seq in enumerate(sequences):
        seq = np.asarray(seq[:seq_len], dtype=np.int64)
        seq = np.where(seq >= vocab_size, oov_id, seq)
        if len(seq):
            out[row, seq_len - len(seq) :] = seq
    return out
