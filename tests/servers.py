"""Real HTTP for tests: serve an ASGI app with uvicorn on a free port in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

_START_TIMEOUT_S = 10.0


@contextlib.contextmanager
def serve(
    app: ASGIApp, *, lifespan: Literal["auto", "on", "off"] = "off", http: type[asyncio.Protocol] | str = "auto"
) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``) of ``app`` served over real sockets; stop it on exit.

    ``lifespan="auto"`` or ``"on"`` runs the app's startup and shutdown, as a deployment would; ``http`` is
    uvicorn's protocol class (``serve`` hands it graph.http.server's).
    """
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan, http=http)
    server = uvicorn.Server(config)

    def run() -> None:
        # uvicorn installs no signal handlers off the main thread, so it runs here as in its own process, except
        # that it calls sys.exit() when startup fails: the caller hears of that below, not as a thread crash.
        with contextlib.suppress(SystemExit):
            server.run()

    thread = threading.Thread(target=run, name="uvicorn-test-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start (a failing lifespan startup stops it)")
            time.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=_START_TIMEOUT_S)
