"""The live page: the HTTP server and its static page (han run --http)."""
