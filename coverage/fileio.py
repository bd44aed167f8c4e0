"""Writing files safely: JSON-ready values and all-or-nothing writes of one file.

Every file the library writes outside a whole output folder (the network
cache, a batch's work files and summaries) goes through :func:`atomic_write`:
written to a temporary file beside the target, flushed to disk, then renamed
over it, so a reader sees the old file or the new one, never half of one.
Whole output folders are swapped in by :mod:`coverage.export`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

#: Prefix of every temporary file written beside a target (short and fixed: it fits
#: wherever the target's name fits, and a sweep can recognise our own leftovers).
TEMP_FILE_PREFIX = ".coverage-planner-tmp-"

#: Unicode categories removed from names: controls (ESC, NUL, C1), format marks (bidi
#: overrides, zero-width), lone surrogates. Unassigned code points are kept: Python 3.11
#: knows Unicode 14, and rarer CJK characters of later versions must survive.
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def strip_controls(text: object, *, keep_newlines: bool = False) -> str:
    """Return ``text`` without control characters (ESC sequences, NUL, bidi marks).

    Tabs, carriage returns and newlines become spaces unless ``keep_newlines``
    (then tabs and newlines stay and carriage returns go). Used for every name and
    id read from a user file, written into an output or echoed in a message, so an
    ANSI escape such as ``ESC[31m`` loses its ESC and cannot colour a terminal.
    """
    value = str(text)
    if value.isprintable():
        return value
    out = []
    for ch in value:
        if ch in "\t\n\r":
            if not keep_newlines:
                out.append(" ")
            elif ch != "\r":
                out.append(ch)
        elif unicodedata.category(ch) not in _REMOVED_CATEGORIES:
            out.append(ch)
    return "".join(out)


def jsonable(value: Any) -> Any:
    """Return a JSON-ready Python value: NaN/inf/NA → None, numpy scalars → Python scalars.

    Mappings and sequences are converted item by item; dataclasses become
    dicts; paths and other objects become their text.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    return str(value)


def json_bytes(doc: Any) -> bytes:
    """Return ``doc`` as indented UTF-8 JSON (Chinese kept as is), ending in a newline."""
    text = json.dumps(jsonable(doc), ensure_ascii=False, indent=2, allow_nan=False)
    return (text + "\n").encode("utf-8")


def atomic_write(
    path: Path, write: Callable[[IO[bytes]], None], *, mode: int = 0o644, tag: str = ""
) -> Path:
    """Write a file all-or-nothing: ``write(fh)`` fills a temporary file renamed onto ``path``.

    Parameters
    ----------
    path
        The target; its folder is created if missing.
    write
        Called once with a binary file handle open for writing.
    mode
        Permission bits of the finished file (a temporary file starts private).
    tag
        Put after :data:`TEMP_FILE_PREFIX` in the temporary name (a batch run's
        tag, so its sweep can tell its own leftovers from another run's).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_FILE_PREFIX + tag)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: Path, data: bytes, *, tag: str = "") -> Path:
    """Write ``data`` to ``path`` all-or-nothing (see :func:`atomic_write`)."""

    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    return atomic_write(path, write, tag=tag)
