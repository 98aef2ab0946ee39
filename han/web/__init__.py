"""The live page: a small read-only HTTP server in the daemon's own event loop (``han run --http``).

access   where it listens, the token, the check of each request
http     the HTTP/1.1 subset it speaks (GET and HEAD, keep-alive, server-sent events)
live     the newest push per meter and the event stream's clients
api      the JSON endpoints, reading the SQLite store in a thread of their own
server   the routes, the page's files (static/), and the wiring into the daemon

Nothing here is imported unless --http (or [http] listen) is given: ``han --help``
and a daemon without the page stay as light as before.
"""
