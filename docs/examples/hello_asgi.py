"""hello_asgi.py: an ASGI app that knows nothing of health (your app as it is)."""


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"Hello\n"})
