"""Unpickling of CIFAR-10's python batches that cannot run code.

A pickle is a program: its GLOBAL opcodes name any importable callable (``os.system``) and its REDUCE opcode
calls it, so ``pickle.load`` on a file from the data folder would run whatever the file asks for. A CIFAR-10
batch needs only a dict, lists, bytes, ints and numpy's array/dtype reconstruction, so this unpickler admits
exactly those globals and refuses every other with a one-line ``UnsafePickle`` naming the file.
"""

from __future__ import annotations

import _codecs
import builtins
import pickle
from pathlib import Path

import numpy as np

from .errors import UnsafePickle

_CORE = getattr(np, "_core", None) or np.core  # numpy >= 2 moved numpy.core to numpy._core
_NUMPY = {
    "_reconstruct": _CORE.multiarray._reconstruct,  # ndarray.__reduce__
    "scalar": _CORE.multiarray.scalar,  # numpy scalars
    "_frombuffer": _CORE.numeric._frombuffer,  # ndarray.__reduce_ex__ at protocol 5
}
_BUILTINS = ("list", "dict", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int", "float", "bool")
# (module, name) -> object: the only globals a CIFAR-10 batch (Python 2 or 3, any numpy) refers to
ALLOWED_GLOBALS = {
    **{(module, name): obj for module in ("numpy.core.multiarray", "numpy._core.multiarray",
                                          "numpy.core.numeric", "numpy._core.numeric")
       for name, obj in _NUMPY.items()},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _codecs.encode,  # how Python 3 writes bytes at protocol 2
    **{(module, name): getattr(builtins, name) for module in ("builtins", "__builtin__") for name in _BUILTINS},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")  # the official batches are Python-2 pickles
        self.path = path

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickle(self.path, f"{module}.{name}") from None


def load_restricted(path: str | Path):
    """The object pickled in ``path``, refusing any global a CIFAR-10 batch does not need."""
    path = Path(path)
    with path.open("rb") as fh:
        return _RestrictedUnpickler(fh, path).load()
