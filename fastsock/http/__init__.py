"""HTTP/1.1 static files, sans-IO: path resolution, conditional and range logic, headers.

Nothing here touches a socket; :mod:`fastsock.handlers.http` drives these pieces from the
httptools parser callbacks and answers through the connection's transport.
"""
