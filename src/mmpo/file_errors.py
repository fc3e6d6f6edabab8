"""Disk faults as one line: a full disk, a read-only or forbidden folder, wherever in a run they strike.

A full disk is found mid-run (a checkpoint, a cache, an output file), often inside a library that wraps the
operating system's error in its own (safetensors' ``SafetensorError``, torch's ``PytorchStreamWriter failed``).
The CLI asks ``disk_fault`` of any error it did not raise on purpose: when it is one of these, the user gets
the cause in their words ("no space left on device") and the way on, instead of a library's message.

``ensure_writable_folder`` is the check a command makes before its heavy work, so a read-only ``--out`` is
refused before a model loads rather than after an hour of scoring.
"""

from __future__ import annotations

import errno
import os
import re
import uuid
from pathlib import Path

from mmpo.errors import ConfigError

_NO_SPACE = re.compile(r"no space left on device|os error 28|StorageFull|disk quota exceeded|os error 122", re.I)
_READ_ONLY = re.compile(r"read-only file system|os error 30", re.I)
_CODES = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
RESUME_HINT = "free some space, then run the same command again (training resumes from its last checkpoint)"
WRITABLE_HINT = "choose a folder you can write to"


def disk_fault(exc: BaseException) -> str | None:
    """One line for a disk fault anywhere in ``exc``'s chain of causes, or None when it is something else."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _CODES:
            where = f" writing {seen.filename!r}" if seen.filename else ""
            full = seen.errno in (errno.ENOSPC, errno.EDQUOT)
            return f"{_CODES[seen.errno]}{where}; {RESUME_HINT if full else WRITABLE_HINT}"
        text = str(seen)
        if _NO_SPACE.search(text):
            return f"no space left on device ({type(seen).__name__}); {RESUME_HINT}"
        if _READ_ONLY.search(text):
            return f"read-only file system ({type(seen).__name__}); {WRITABLE_HINT}"
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return None


def ensure_writable_folder(folder: str | Path, what: str) -> Path:
    """Prove a file can be written in ``folder`` (or, while it does not exist yet, in the nearest folder above it
    that does, where it would be made), or one ``ConfigError`` naming the setting, the folder and the reason.
    Nothing is left behind: a refused run must not leave an empty output folder either."""
    path = Path(folder).expanduser().absolute()
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    if not existing.is_dir():
        raise ConfigError(f"{what} {str(path)!r} cannot be made: {str(existing)!r} is a file")
    probe = existing / f".mmpo-write-test-{uuid.uuid4().hex}"
    try:
        with open(probe, "wb") as handle:
            handle.write(b"0")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        reason = _CODES.get(exc.errno, exc.strerror or type(exc).__name__)
        raise ConfigError(f"{what} {str(path)!r} cannot be written ({reason})") from None
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
    return path
