"""``concierge serve``: one process serving the shopper chat at ``/``, the JSON API at ``/v1`` and the
customer-service console at ``/console``.

All are thin clients of the same :class:`assistant.service.AssistantService`, so a session opened in one is the
session of the others. The API app (:func:`ui.api.build_api`) is the root; the console (:func:`ui.console.
build_console`) is mounted onto it at ``/console``, then the Gradio chat at ``/`` (``gr.mount_gradio_app``): routes
match in the order they were added, so ``/v1/...``, ``/openapi.json`` and ``/console/...`` come before the chat's
catch-all. uvicorn serves it on ``[server] host`` and ``port`` (127.0.0.1:7860 unless set). ``concierge demo`` serves
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
    """The API at ``/v1`` with the console mounted at ``/console`` and the shopper chat at ``/``."""
    import gradio as gr

    from ui.api import build_api
    from ui.app import build_app
    from ui.console import build_console
    from ui.embed import embed_router

    app = build_api(service, settings)
    app.mount("/console", build_console(service, settings))
    app.include_router(embed_router())
    return gr.mount_gradio_app(
        app,
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
    return (
        f"==> Concierge is ready: the chat at {url}, the API at {url}/v1 ({url}/openapi.json), the agent console "
        f"at {url}/console/  (Ctrl+C stops it)"
    )


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
    try:
        server = make_server(assistant.service, settings.server)
    except ValueError as error:  # a setting the server cannot take (a password hash that does not parse)
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(ready_line(settings.server), flush=True)
    server.run()
    return 0
