"""hello_wsgi.py: a WSGI app that knows nothing of health (your app as it is)."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello\n"]
