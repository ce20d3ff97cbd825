"""Files the shell writes: complete or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that appears at ``path`` only once complete.

    Written to a temporary file in the same folder (so the rename stays on one file system, where
    it is atomic), flushed to disk, then renamed over ``path``. An exception, an interrupt or a
    crash leaves ``path`` as it was: never a half-written file.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_text(path: Path) -> Iterator[IO[str]]:
    """A UTF-8 text file (``\\n`` line ends) that appears at ``path`` only once complete."""
    with atomic_output(path) as binary, open(binary.fileno(), "w", encoding="utf-8", newline="\n", closefd=False) as f:
        yield f
