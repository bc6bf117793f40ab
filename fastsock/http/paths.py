"""From a request target to an open file that is certainly inside the root.

Two steps, each enough on its own for the common attacks, together also for symlinks:

1. :func:`split_target` decodes the path and refuses ``..`` segments, NUL bytes and anything
   that is not an origin-form path -- before any file-system call.
2. :meth:`Root.open` opens the file (following symlinks, as a static server should for links
   inside its root) and then asks the kernel where the descriptor really points
   (``/proc/self/fd/N``): a link that leads outside the root is closed and refused. Checking the
   opened descriptor, not the path beforehand, leaves no window for a swapped link.
"""

from __future__ import annotations

import errno
import os
import stat
from urllib.parse import unquote_to_bytes

_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK  # NONBLOCK: FIFOs
_PROC_FD = "/proc/self/fd"


class HttpError(Exception):
    """A request that ends in an error status (404, 403, 503...)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def split_target(path: bytes) -> list[str] | None:
    """Percent-decode an origin-form path (no query) into safe segments; None: refuse it.

    Refused: a path not starting with ``/``, a NUL byte, a ``..`` segment (also encoded as
    ``%2e%2e`` or around an encoded ``%2f``). Empty and ``.`` segments are dropped, so
    ``//a/./b`` is ``a/b``. Segments are file-system strings (surrogate-escaped bytes).
    """
    if not path.startswith(b"/"):
        return None
    if b"%" in path:
        path = unquote_to_bytes(path)
    if b"\0" in path:
        return None
    segments = []
    for seg in path.split(b"/"):
        if not seg or seg == b".":
            continue
        if seg == b"..":
            return None
        segments.append(os.fsdecode(seg))
    return segments


class Root:
    """The served directory; opens files under it and nowhere else."""

    def __init__(self, root: str) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", root)
        self.path = real
        self._prefix = real if real.endswith("/") else real + "/"
        self._use_proc = os.path.isdir(_PROC_FD)

    def open(self, segments: list[str]) -> tuple[int, os.stat_result]:
        """Open ``root/segments...`` read-only; returns (fd, its stat). The caller closes fd.

        Raises :class:`HttpError`: 404 for what does not exist or lies outside the root, 403
        when we may not read it, 503 when we are out of file descriptors.
        """
        path = self._prefix + "/".join(segments) if segments else self.path
        if not self._use_proc and not self.contains(os.path.realpath(path)):
            raise HttpError(404)
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as err:
            raise HttpError(_status_for(err)) from None
        try:
            if self._use_proc and not self.contains(os.readlink(f"{_PROC_FD}/{fd}")):
                raise HttpError(404)
            st = os.fstat(fd)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise HttpError(404)  # FIFOs, devices, sockets: never served
        except OSError as err:
            os.close(fd)
            raise HttpError(_status_for(err)) from None
        except BaseException:
            os.close(fd)
            raise
        return fd, st

    def contains(self, real: str) -> bool:
        """Is this resolved path the root or below it?"""
        return real == self.path or real.startswith(self._prefix)


def _status_for(err: OSError) -> int:
    if err.errno in (errno.EACCES, errno.EPERM):
        return 403
    if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
        return 503
    return 404  # ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, ...
