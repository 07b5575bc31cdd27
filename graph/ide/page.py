"""The playground page: our own HTML around GraphiQL's browser builds, which the service serves itself.

The page names its assets relative to ``/graphql`` (``graphiql/static/...``), so it keeps working behind
a path prefix, and a Content-Security-Policy lets it load scripts, styles and data only from the service.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

IDE_DIR = Path(__file__).resolve().parent
STATIC_DIR = IDE_DIR / "static"
STATIC_PATH = "/graphiql/static"  # where app.py mounts STATIC_DIR; page.html names it relative to /graphql
BUILD_COMMAND = "python -m graph build-ide"


def asset_names() -> tuple[str, ...]:
    """The files ``npm run build`` copies into ``static/`` (assets.json is shared with copy-assets.mjs)."""
    mapping: dict[str, str] = json.loads((IDE_DIR / "assets.json").read_text(encoding="utf-8"))
    return tuple(mapping)


def assets_built(static_dir: Path = STATIC_DIR) -> bool:
    return all((static_dir / name).is_file() for name in asset_names())


@dataclass(frozen=True)
class Page:
    html: str
    content_security_policy: str | None  # None: Strawberry's CDN page, which loads its scripts from elsewhere


def cdn_page() -> Page:
    """Strawberry's own GraphiQL page, for a checkout where the assets were not built (it needs the internet)."""
    from strawberry.http.ides import get_graphql_ide_html

    return Page(html=get_graphql_ide_html(graphql_ide="graphiql"), content_security_policy=None)


def example_operation() -> str:
    """The operation a first-time visitor finds in the editor: a release dashboard over the demo data."""
    return (IDE_DIR / "example.graphql").read_text(encoding="utf-8")


def render_page() -> Page:
    script = (IDE_DIR / "page.js").read_text(encoding="utf-8")
    # JSON inside <script> must not contain "</script>": escape "<" (and "&", ">") the way JSON allows.
    example = json.dumps(example_operation()).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    html = (
        (IDE_DIR / "page.html")
        .read_text(encoding="utf-8")
        .replace("{{example}}", example)
        .replace("{{script}}", script)
    )
    script_hash = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'sha256-{script_hash}'",  # the page's own inline script, nothing else inline
            "style-src 'self' 'unsafe-inline'",  # GraphiQL and CodeMirror set style attributes
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return Page(html=html, content_security_policy=policy)
