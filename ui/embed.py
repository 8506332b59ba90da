"""An example store page with the shopper chat embedded, served at ``/embed``.

A store puts the chat on its own pages with an iframe of the chat's address (the page below is the whole recipe:
copy the ``<iframe>`` element and point ``src`` at where ``concierge serve`` runs). The iframe keeps the chat's
own origin, so its session id (kept in that origin's local storage) survives a reload of the store's page, and the
chat's scripts never run in the store's page. The browser tests drive the chat through this page.
"""

from __future__ import annotations

import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

EMBED_PATH = "/embed"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{store} - shop with Concierge</title>
<style>
  body {{ font-family: system-ui, sans-serif; margin: 0; background: #f6f6f4; color: #222; }}
  header {{ background: #23395d; color: #fff; padding: 14px 24px; font-size: 20px; }}
  main {{ display: flex; gap: 24px; padding: 24px; flex-wrap: wrap; }}
  section {{ flex: 1 1 260px; }}
  .chat {{ flex: 2 1 560px; }}
  iframe {{ width: 100%; height: 1100px; border: 1px solid #ccc; border-radius: 8px; background: #fff; }}
  pre {{ background: #fff; padding: 12px; border-radius: 6px; white-space: pre-wrap; font-size: 13px; }}
</style>
</head>
<body>
<header>{store}</header>
<main>
  <section>
    <h2>Not sure what to get?</h2>
    <p>Our assistant asks a few questions and picks products from this store for you, saying why each one fits.</p>
    <p>To put the assistant on your own page, add:</p>
    <pre>{snippet}</pre>
  </section>
  <section class="chat">
    {iframe}
  </section>
</main>
</body>
</html>
"""


def embed_snippet(chat_url: str) -> str:
    """The element a store adds to its page to embed the chat served at ``chat_url``."""
    return (
        f'<iframe src="{html.escape(chat_url, quote=True)}" title="Shopping assistant" '
        'style="width:100%;height:1300px;border:0" loading="lazy"></iframe>'
    )


def embed_page(chat_url: str = "/", store: str = "Example Store") -> str:
    """The example page: a store's page with the chat at ``chat_url`` in an iframe, and the snippet that does it."""
    snippet = embed_snippet(chat_url)
    return _PAGE.format(store=html.escape(store), snippet=html.escape(snippet), iframe=snippet)


def embed_router(chat_url: str = "/") -> APIRouter:
    """``GET /embed``: :func:`embed_page`."""
    router = APIRouter()
    page = embed_page(chat_url)

    @router.get(EMBED_PATH, response_class=HTMLResponse, include_in_schema=False)
    def embed() -> HTMLResponse:
        return HTMLResponse(page)

    return router
