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

import numpy as np
import torch

from .errors import DatasetNotFound
from .splits import Split, Splits

FILES = {"train": "ptb.char.train.txt", "val": "ptb.char.valid.txt", "test": "ptb.char.test.txt"}


def read_stream(path: Path) -> str:
    """The file's characters as one string, ``\n`` standing for <eos> after each sentence."""
    if not path.is_file():
        raise DatasetNotFound("PTB (character level)", str(path),
                              "set NORMREPRO_DATA=<dir> (or data.root=...) to a folder whose PTB/ holds Mikolov's "
                              "ptb.char.{train,valid,test}.txt (`make data` does not fetch PTB)")
    lines = []
    for line in path.read_text().splitlines():
        chars = line.split()
        if not chars:
            continue
        if any(len(c) != 1 for c in chars):
            raise ValueError(f"{path}: expected single-character symbols separated by spaces, got {line[:60]!r}")
        lines.append("".join(chars))
    return "\n".join(lines) + "\n"


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
    """Train/valid/test windows; the vocabulary is the training file's symbols (sorted), then <eos>.
    ``train_limit`` / ``eval_limit`` keep the first N windows (contiguous text)."""
    folder = Path(root) / "PTB"
    streams = {name: read_stream(folder / f) for name, f in FILES.items()}
    vocab = sorted(set(streams["train"]) - {"\n"})  # + <eos> (\n) last
    table = np.full(0x110000 if max(map(ord, "".join(vocab))) > 255 else 256, -1, dtype=np.int64)
    for i, ch in enumerate([*vocab, "\n"]):
        table[ord(ch)] = i
    split = {}
    for name, text in streams.items():
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = table[np.minimum(codes, len(table) - 1)]
        if (ids < 0).any():
            missing = sorted({chr(c) for c in codes[ids < 0]})
            raise ValueError(f"PTB {name} symbols missing from the training vocabulary: {missing}")
        s = windows(torch.from_numpy(ids), seq_len, train_limit if name == "train" else eval_limit)
        split[name] = Split(s.x.to(device), s.y.to(device))
    return Splits(name="ptb_char", train=split["train"], val=split["val"], test=split["test"],
                  num_classes=len(vocab) + 1, input_shape=(seq_len,), mean=(), std=())
