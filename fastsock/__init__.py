"""fastsock: UNIX-domain sockets vs TCP loopback, measured; a pure-Python selectors server."""

__version__ = "0.1.0"
