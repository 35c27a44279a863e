"""/6/docs/dev (the development manual) and /6/plugins.

LUNA serves a Sphinx development manual under /docs/dev/index.html. Ours is rendered from the
repository's own READMEs when it is asked for, so it always says what the running code says.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from aiohttp import web
from markdown_it import MarkdownIt

from services.gateway.routing import Ctx, RouteTable, json_response

table = RouteTable()

REPO = Path(__file__).resolve().parents[3]
MANUAL_PATH = "/docs/dev/index.html"
# The manual's chapters, in reading order; service READMEs follow in folder order.
FRONT = ("README.md", "docs/CONVENTIONS.md", "docs/DECISIONS.md")
_SLUG_RE = re.compile(r"[^a-z0-9]+")


def manual_sources(repo: Path = REPO) -> list[Path]:
    front = [repo / name for name in FRONT]
    services = sorted((repo / "services").glob("*/README.md"))
    return [p for p in (*front, *services) if p.is_file()]


def _slug(path: Path, repo: Path) -> str:
    return _SLUG_RE.sub("-", str(path.relative_to(repo)).lower()).strip("-")


def render_manual(repo: Path = REPO) -> str:
    """One HTML page: a table of contents, then every source rendered from Markdown."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    toc, chapters = [], []
    for path in manual_sources(repo):
        rel = str(path.relative_to(repo))
        slug = _slug(path, repo)
        toc.append(f"<li><a href='#{slug}'>{html.escape(rel)}</a></li>")
        body = md.render(path.read_text(encoding="utf-8"))
        chapters.append(
            f"<section id='{slug}'><p class='src'>{html.escape(rel)}</p>{body}</section>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>Development manual</title><style>body{font-family:sans-serif;margin:2em;"
        "max-width:60em}pre{background:#f6f6f6;padding:.5em;overflow:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px}"
        "section{border-top:2px solid #888;margin-top:2em}.src{color:#888}</style></head>"
        "<body><h1>Development manual</h1><p>Rendered from the repository's READMEs. The "
        "OpenAPI document: <a href='/6/docs/spec'>/6/docs/spec</a>.</p><ul>"
        + "".join(toc)
        + "</ul>"
        + "".join(chapters)
        + "</body></html>"
    )


@table.route("GET", "/6/docs/dev", auth=None, op="getDevManual")
async def dev_manual_redirect(ctx: Ctx) -> web.Response:
    raise web.HTTPFound(MANUAL_PATH)


@table.route("GET", MANUAL_PATH, auth=None)
async def dev_manual(ctx: Ctx) -> web.Response:
    return web.Response(text=render_manual(), content_type="text/html")


@table.route("GET", "/6/plugins", auth=None, op="getPlugins")
async def plugins(ctx: Ctx) -> web.Response:
    # LUNA lists the service plugins it loaded; this platform has no plugin mechanism.
    return json_response({"plugins": []})
