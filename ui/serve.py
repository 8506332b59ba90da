"""``concierge serve``: one process serving the shopper chat at ``/`` and the JSON API at ``/v1``.

Both are thin clients of the same :class:`assistant.service.AssistantService`, so a session opened in one is the
session of the other. The API app (:func:`ui.api.build_api`) is the root; the Gradio chat is mounted onto it at
``/`` (``gr.mount_gradio_app``), after the API's routes, which therefore take ``/v1/...`` and ``/openapi.json``
first. uvicorn serves it on ``[server] host`` and ``port`` (127.0.0.1:7860 unless set). ``concierge demo`` serves
through the same functions.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from assistant.service import AssistantService
from data.settings import ServerSettings, Settings

# Open streams (the chat's queue, the API's server-sent events) may hold a stop this long, no longer.
_GRACEFUL_STOP_S = 5


def build_server_app(service: AssistantService, settings: ServerSettings) -> FastAPI:
    """The API at ``/v1`` with the shopper chat mounted at ``/``."""
    import gradio as gr

    from ui.api import build_api
    from ui.app import build_app

    return gr.mount_gradio_app(
        build_api(service, settings),
        build_app(service),
        path="/",
        server_name=settings.host,
        server_port=settings.port,
    )


def make_server(service: AssistantService, settings: ServerSettings) -> uvicorn.Server:
    """A uvicorn server for :func:`build_server_app`; ``.run()`` serves until Ctrl+C (or ``should_exit``)."""
    config = uvicorn.Config(
        build_server_app(service, settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=_GRACEFUL_STOP_S,
    )
    return uvicorn.Server(config)


def ready_line(settings: ServerSettings) -> str:
    url = f"http://{settings.host}:{settings.port}"
    return f"==> Concierge is ready: the chat at {url}, the API at {url}/v1 ({url}/openapi.json)  (Ctrl+C stops it)"


def run_serve(settings: Settings, *, strict: bool = False) -> int:
    """``concierge serve``: load the catalog, assemble the assistant from what is built, serve."""
    from retrieval.errors import RetrievalError
    from ui.demo import build_service, load_data

    catalog, interactions = load_data(settings, strict=strict)
    try:
        assistant = build_service(settings, catalog, interactions)
    except RetrievalError as error:
        print(f"error: {error}; run `concierge build` first", file=sys.stderr)
        return 1
    server = make_server(assistant.service, settings.server)
    print(ready_line(settings.server), flush=True)
    server.run()
    return 0
