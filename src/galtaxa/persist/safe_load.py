"""Reading torch files without ever executing code from them.

A ``.pt`` / ``.pth`` file is a Python pickle: read with ``torch.load(..., weights_only=False)`` it can run any
code its author chose.  galtaxa reads every torch file through :func:`torch_load`, which only accepts what
torch's weights-only unpickler accepts (tensors, numbers, strings, ``None`` and lists, tuples, dicts of them)
and turns a refusal into :class:`UnsafeFileError`, a :class:`ValueError` that names the file.

galtaxa itself writes no torch file: its weights and checkpoints are safetensors files
(:mod:`galtaxa.persist.tensors`), its fitted estimators ``.npz`` archives (:mod:`galtaxa.persist.archive`).
"""

from __future__ import annotations

import json
import pickle
import re
import warnings
from pathlib import Path


__all__ = ["UnsafeFileError", "torch_load", "refuse_legacy_pickles", "read_json"]

#: Largest JSON file :func:`read_json` reads.
MAX_JSON_BYTES = 64 * 2**20


class UnsafeFileError(ValueError):
    """A file galtaxa refuses to read because reading it could execute code (a pickle of Python objects)."""


def _asked_for(message: str) -> str:
    """The global a refused pickle asked for, from torch's message (``"posix.system"``), or ``""``."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    return f" (it asks for the Python object {found.group(1)!r})" if found else ""


def torch_load(path, what: str = "torch file"):
    """``torch.load(path, map_location="cpu", weights_only=True)`` with errors that name the file.

    Parameters
    ----------
    path : path-like
        A file written by ``torch.save``.
    what : str
        What the file is, for the messages (``"checkpoint"``, ``"encoder checkpoint"``).

    Returns
    -------
    object
        Tensors in plain containers (dict, list, tuple) with numbers, strings and ``None``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UnsafeFileError
        If the file holds other Python objects: unpickling them could execute code, so it is refused.
    ValueError
        If the file is empty, truncated or not a torch file.
    """
    import torch  # lazy: torch, only to read a torch file

    if tuple(int(v) for v in re.findall(r"\d+", torch.__version__)[:2]) < (2, 6):
        # before 2.6 a crafted file could still run code through weights_only=True (CVE-2025-32434)
        raise RuntimeError(f"torch {torch.__version__} cannot read torch files safely; install torch >= 2.6")
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of hand-made pickles before refusing them; the refusal says it all
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "Weights only load failed" not in text:
            raise ValueError(f"{what} {path} is not a readable torch file (corrupt or truncated?): "
                             f"{text.splitlines()[0] if text else type(err).__name__}") from None
        raise UnsafeFileError(
            f"{what} {path} is refused: it holds Python objects other than tensors, numbers and strings"
            f"{_asked_for(text)}, and reading them would need to execute code from the file. galtaxa only reads "
            "weights-only torch files. If galtaxa wrote it, an older version did: train or save it again "
            "with this one; otherwise convert it to a plain state dict (or .safetensors) where it came from."
        ) from None
    except (RuntimeError, EOFError, KeyError) as err:  # bad zip archive, empty file, garbage bytes
        raise ValueError(f"{what} {path} is not a readable torch file (empty, truncated or corrupt): "
                         f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")) from None


def refuse_legacy_pickles(paths, refit: str) -> None:
    """Raise :class:`UnsafeFileError` for the first of ``paths`` that exists (a pickle an older galtaxa wrote).

    Parameters
    ----------
    paths : iterable of path-like
    refit : str
        What to do instead, appended to the message.
    """
    for p in paths:
        p = Path(p)
        if p.exists():
            raise UnsafeFileError(f"{p} was written by an older galtaxa with pickle, which can execute code when "
                                  f"read; galtaxa no longer reads pickles. Refit: {refit}")


def read_json(path, what: str = "JSON file", expect: type = dict):
    """The JSON value of ``path``, checked to be a regular, readable, UTF-8 file holding an ``expect``.

    For the JSON files of a run folder that galtaxa reads back (``supervised/report.json``, ``mosaics.json``):
    a hand-edited or damaged one is refused with a message naming it, never a ``TypeError`` or
    ``AttributeError`` later.

    Parameters
    ----------
    path : path-like
    what : str
        What the file is, for the messages.
    expect : type
        The type of the top-level value (``dict`` or ``list``).

    Returns
    -------
    dict or list

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is not a regular file, larger than :data:`MAX_JSON_BYTES`, not UTF-8, not JSON, nested too deeply,
        or holds another type of value.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} not found")
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a regular file")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ValueError(f"{what} {path} is {size:,} bytes; at most {MAX_JSON_BYTES:,} are read")
    try:
        value = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{what} {path} is not UTF-8 (byte 0x{err.object[err.start]:02x} at {err.start})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {path} is not valid JSON (line {err.lineno}: {err.msg})") from None
    except RecursionError:
        raise ValueError(f"{what} {path} is nested too deeply to be read") from None
    if not isinstance(value, expect):
        kind = {dict: "an object {...}", list: "a list [...]"}.get(expect, expect.__name__)
        raise ValueError(f"{what} {path} holds a {type(value).__name__}, not {kind}: fix or remove it")
    return value
