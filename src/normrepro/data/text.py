"""Character-level Penn Treebank (Mikolov et al. 2012's split, ``<root>/PTB/ptb.char.{train,valid,test}.txt``)
as fixed-length windows for next-character prediction ([C] Sec. 5.2).

The files hold one sentence per line, characters separated by spaces and words by ``_``. Each line becomes
its characters followed by an end-of-sentence symbol (``<eos>``, Mikolov's convention: 49 symbols + <eos>).
A split's character stream is cut into non-overlapping windows of ``seq_len + 1`` characters overlapping
by one: x = window[:-1], y = window[1:], so every character of the stream (but the first) is a target
exactly once. Evaluation runs each window from a zero state, which costs a little against carrying the
state across windows; training windows are drawn in random order like images.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import DatasetNotFound
from .splits import Split, Splits

EOS = "<eos>"
FILES = {"train": "ptb.char.train.txt", "val": "ptb.char.valid.txt", "test": "ptb.char.test.txt"}


def read_symbols(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetNotFound("PTB (character level)", str(path))
    symbols: list[str] = []
    for line in path.read_text().splitlines():
        chars = line.split()
        if chars:
            symbols += chars + [EOS]
    return symbols


def windows(ids: torch.Tensor, seq_len: int, limit: int | None) -> Split:
    """Cut a 1-D id stream into (N, seq_len) inputs and next-character targets."""
    n = (len(ids) - 1) // seq_len
    if limit is not None:
        n = min(n, limit)
    x = ids[: n * seq_len].view(n, seq_len)
    y = ids[1: n * seq_len + 1].view(n, seq_len)
    return Split(x.clone(), y.clone())


def load_char_splits(root: str, seq_len: int, train_limit: int | None = None, eval_limit: int | None = None,
                     device: str = "cpu") -> Splits:
    """Train/valid/test windows; the vocabulary is the training file's symbols (sorted) + <eos>.
    ``train_limit`` / ``eval_limit`` keep the first N windows (contiguous text)."""
    folder = Path(root) / "PTB"
    streams = {name: read_symbols(folder / f) for name, f in FILES.items()}
    vocab = sorted(set(streams["train"]) - {EOS}) + [EOS]
    index = {s: i for i, s in enumerate(vocab)}
    unknown = set(streams["val"]) | set(streams["test"])
    unknown -= set(index)
    if unknown:
        raise ValueError(f"PTB valid/test symbols missing from the training vocabulary: {sorted(unknown)}")
    split = {}
    for name, symbols in streams.items():
        ids = torch.tensor([index[s] for s in symbols], dtype=torch.int64)
        s = windows(ids, seq_len, train_limit if name == "train" else eval_limit)
        split[name] = Split(s.x.to(device), s.y.to(device))
    return Splits(name="ptb_char", train=split["train"], val=split["val"], test=split["test"],
                  num_classes=len(vocab), input_shape=(seq_len,), mean=(), std=())
