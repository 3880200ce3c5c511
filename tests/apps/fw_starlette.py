"""A bare Starlette app (unwrapped: the server one-liners wrap it)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("starlette")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"echo:{text}")
    await websocket.close()


app = Starlette(routes=[Route("/", home), WebSocketRoute("/ws", echo)])
