"""Files the shell writes: complete or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write (for a library that takes a path) that becomes ``path`` only once
    the block ends without an exception.

    The temporary file is in the same folder (so the rename stays on one file system, where it is
    atomic). An exception, an interrupt or a crash leaves ``path`` as it was: never a half-written
    file.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        yield Path(temporary)
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
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that appears at ``path`` only once complete (flushed to disk first)."""
    with atomic_path(path) as temporary, temporary.open("wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_text(path: Path) -> Iterator[IO[str]]:
    """A UTF-8 text file (``\\n`` line ends) that appears at ``path`` only once complete."""
    with atomic_output(path) as binary, open(binary.fileno(), "w", encoding="utf-8", newline="\n", closefd=False) as f:
        yield f
