"""Saving and loading state: ``save(model.state_dict(), path)``, ``load(path)``.

Anything made of dicts, lists, tuples, arrays (or Tensors), numbers, strings, booleans
and None can be saved: a model's state dict, an optimiser's (with its list of parameter
groups), a whole training checkpoint. ``load`` gives back the same structure.

The file is a NumPy ``.npz`` archive written without pickle, so loading a file never
runs code from it: each array is one ``.npy`` member named by its path in the structure
(``model/fc1.weight``, readable with ``np.load`` too), and the structure itself is a
JSON text in the member ``__tree__``.

``save`` writes to a temporary file in the same folder and then renames it over the
target (``os.replace`` is atomic), so a crash or an error halfway through a save never
leaves a broken file: the previous file stays as it was.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from chainrule._atomic import atomic_writer
from chainrule.tensor import Tensor

__all__ = ["save", "load"]

PathLike = str | os.PathLike
TREE = "__tree__"


def _encode(value: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` as JSON-able data; arrays are moved into ``arrays`` under ``path``."""
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"save: keys must be strings or ints, got {key!r} in "
                                f"{path or 'the top level'}")
            items.append([key, _encode(item, f"{path}/{key}" if path else str(key), arrays)])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        encoded = [_encode(item, f"{path}/{i}", arrays) for i, item in enumerate(value)]
        return {"list" if isinstance(value, list) else "tuple": encoded}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    if isinstance(value, (Tensor, np.ndarray, np.generic)):
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.kind not in "biufcUS":
            raise TypeError(f"save: {path!r} is an array of dtype {array.dtype}, which "
                            "cannot be stored without pickle")
        if path in arrays:
            raise ValueError(f"save: two entries share the name {path!r}")
        arrays[path] = array
        return {"array": path}
    raise TypeError(f"save: {path!r} holds {type(value).__name__}, which cannot be stored "
                    "without pickle; give arrays, numbers, strings or dicts/lists of them")


def _decode(node: dict[str, Any], arrays: Any) -> Any:
    kind, content = next(iter(node.items()))
    if kind == "dict":
        return {key: _decode(item, arrays) for key, item in content}
    if kind == "list":
        return [_decode(item, arrays) for item in content]
    if kind == "tuple":
        return tuple(_decode(item, arrays) for item in content)
    if kind == "array":
        return arrays[content]
    return content


def save(obj: Any, path: PathLike) -> None:
    """Save ``obj`` (a state dict, or any structure of dicts, lists, arrays, numbers and
    strings) to ``path`` as an .npz file, atomically. An object with ``state_dict()``
    (a Module, an optimiser) is saved as its state dict."""
    if not isinstance(obj, (Mapping, list, tuple)) and hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, "", arrays)
    if TREE in arrays:
        raise ValueError(f"save: the name {TREE!r} is reserved")
    with atomic_writer(path) as f:
        # the .npz layout of np.savez, written member by member so that any name
        # works (np.savez(file, **arrays) would clash with an entry named "file")
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED,
                             allowZip64=True) as archive:
            members = {**arrays, TREE: np.array(json.dumps(tree))}
            for key, array in members.items():
                with archive.open(key + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)


def load(path: PathLike, prefix: str | None = None) -> Any:
    """Load what ``save`` wrote: the same structure, with NumPy arrays. With ``prefix``,
    only that top-level entry (``load(path, prefix="model")``). A plain ``np.savez`` file
    loads as a dict of its arrays."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no file at {path!r}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array (.npy), not a saved structure")
        with archive:
            arrays = {key: archive[key] for key in archive.files}
        tree = json.loads(str(arrays.pop(TREE))) if TREE in arrays else None
        obj = arrays if tree is None else _decode(tree, arrays)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError,
            StopIteration) as error:
        raise ValueError(f"load: {path!r} is not a valid chainrule save file (an .npz "
                         f"archive written by chainrule.save); it may be damaged or "
                         f"incomplete: {error}") from error
    if prefix is None:
        return obj
    if not isinstance(obj, dict) or prefix not in obj:
        names = sorted(obj) if isinstance(obj, dict) else []
        raise KeyError(f"load: no entry {prefix!r} in {path!r}; top-level names: {names}")
    return obj[prefix]
