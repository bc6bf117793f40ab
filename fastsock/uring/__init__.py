"""The io_uring engine (``fastsock serve --engine uring``): a second transport for the same
handlers, completion-based. ``abi`` holds the kernel ABI, ``ring`` the rings, ``connection`` the
transport, ``server`` the engine."""
