"""Settings of ``fastsock serve --mode http``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HttpConfig:
    """Where files come from and how much a client may send before it is refused.

    The limits match common servers' defaults in spirit (nginx: 8 KiB request line buffers,
    1 MiB bodies): a static file server needs little, and everything beyond is memory a client
    could make us hold.
    """

    root: str
    list_dirs: bool = False
    header_timeout: float = 10.0  # seconds for a request's head to arrive (408); 0: no limit
    max_url: int = 8192  # bytes of request target (414)
    max_header_bytes: int = 16384  # bytes of header names + values (431)
    max_headers: int = 100  # header fields (431)
    max_body: int = 65536  # bytes of a request body, which we read and drop (413)
    max_pipeline: int = 64  # parsed requests waiting for an answer before we stop reading
    open_files: int = 256  # files kept open between requests (see http/filecache.py); 0: none
    open_files_valid: float = 1.0  # seconds before a cached path is resolved again
    # Cached files this small are also kept in memory (one send per answer), up to
    # memory_cache bytes in all; 0: none (see http/filecache.py).
    memory_cache: int = 8 << 20
    memory_file_max: int = 32 << 10
