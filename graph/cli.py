"""``python -m graph`` / ``alipay-graph``: serve, export-schema, query (README "Quick start"), build-ide and
persisted-manifest.

Heavy imports happen inside each command: ``export-schema`` must not load uvicorn, ``serve`` must not
build what ``query`` needs. stdout carries only a command's result; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graph.config import ConfigError, Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alipay-graph", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the GraphQL service (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="no credentials: an embedded sandbox gateway answers")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes (each with its own gateway pool and memory cache)"
    )

    export = commands.add_parser("export-schema", help="print the schema's SDL")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")

    commands.add_parser(
        "build-ide", help="install GraphiQL's assets with npm (lockfile) so the playground needs no CDN"
    )

    manifest = commands.add_parser(
        "persisted-manifest",
        help="write Apollo's persisted-query manifest for a folder of .graphql operation files (GRAPH_OPERATIONS_FILE)",
    )
    manifest.add_argument("folder", type=Path, help="searched recursively for *.graphql and *.gql files")
    manifest.add_argument("--output", type=Path, help="write to this file instead of stdout")

    query = commands.add_parser("query", help="run one operation and print the JSON result (exit 1 on errors)")
    query.add_argument("document", help="the GraphQL operation text")
    query.add_argument("--variables", default=None, help="variables as a JSON object")
    query.add_argument("--operation-name", default=None)
    query.add_argument("--demo", action="store_true", help="ask the embedded sandbox gateway instead of Alipay")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "export-schema":
            return _export_schema(args.output)
        if args.command == "persisted-manifest":
            return _persisted_manifest(args.folder, args.output)
        if args.command == "build-ide":
            from graph.ide.build import build

            return build()
        settings = Settings.from_environ(demo=args.demo)
        if args.command == "serve":
            return _serve(settings, args.host, args.port, args.workers)
        return _query(settings, args.document, args.variables, args.operation_name)
    except ConfigError as exc:
        print(f"alipay-graph: {exc}", file=sys.stderr)  # noqa: T201  (the one line a misconfigured start prints)
        return 2


def _export_schema(output: Path | None) -> int:
    from graph.execution.schema import create_schema

    sdl = create_schema().as_str() + "\n"
    if output is None:
        sys.stdout.write(sdl)
    else:
        output.write_text(sdl, encoding="utf-8")
    return 0


def _persisted_manifest(folder: Path, output: Path | None) -> int:
    from graph.execution.manifest import ManifestError, build_manifest

    try:
        manifest = build_manifest(folder)
    except ManifestError as exc:
        print(f"alipay-graph: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    if output is None:
        sys.stdout.write(manifest.dumps() + "\n")
    else:
        output.write_text(manifest.dumps(), encoding="utf-8")  # byte for byte what Apollo's tool writes
        print(f"alipay-graph: {len(manifest.operations)} operations written to {output}", file=sys.stderr)  # noqa: T201
    return 0


def _flush_logs_on_sigterm() -> None:
    """uvicorn re-raises the SIGTERM it caught once it has stopped; ending by the default handler would skip
    the batched log lines of the last moments (a signal death runs no atexit). This handler writes them first,
    then dies of the same signal, so the exit status still says SIGTERM."""
    from graph.observability import logs

    def flush_then_die(signum: int, frame: object) -> None:
        logs.flush()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, flush_then_die)


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    import uvicorn

    from graph.http import server
    from graph.observability import logs
    from graph.observability.workers import prepare

    if not 1 <= workers <= 64:
        raise ConfigError("--workers: expected a whole number from 1 to 64")
    logs.configure(settings.log_format, settings.log_level, batched=True)
    _flush_logs_on_sigterm()
    # An import string and a factory, as workers need: each worker process builds its own app from the
    # environment (already validated above, so a bad setting stopped us with one line before any fork).
    # The protocol class and the loop factory are graph.http.server's: the read deadline, the connection cap and
    # the accept-failure lines summed up (docs/operations.md, "Slow and many clients").
    # With several workers one scrape shows them all: their metrics directory exists before any of them starts.
    # (uvicorn's supervisor handles SIGTERM itself and returns, so the clean-up runs.)
    clean_up = prepare(workers)
    try:
        uvicorn.run(
            "graph.app:demo_from_environ" if settings.demo else "graph.app:from_environ",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.shutdown_grace_s,
            timeout_keep_alive=settings.keep_alive_s,
            http=server.protocol_class(),
            loop="graph.http.server:new_event_loop",
        )
    finally:
        clean_up()
    return 0


def _query(settings: Settings, document: str, variables_text: str | None, operation_name: str | None) -> int:
    from graph.observability import logs

    variables: Any = None
    if variables_text is not None:
        try:
            variables = json.loads(variables_text)
        except json.JSONDecodeError:
            variables = None
        if not isinstance(variables, dict):
            raise ConfigError("--variables: expected a JSON object")
    logs.configure(settings.log_format, settings.log_level)
    result = asyncio.run(_execute(settings, document, variables, operation_name))
    sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    return 1 if result.get("errors") else 0


async def _execute(
    settings: Settings, document: str, variables: dict[str, Any] | None, operation_name: str | None
) -> dict[str, Any]:
    from graph.app import open_services
    from graph.execution.schema import create_schema
    from graph.http.execute import execute
    from graph.http.request import GraphQLRequest, RequestError
    from resolvers.context import build_context

    # The edge's execution path, so a script sees what an HTTP caller would (no `data` for a request error).
    request = GraphQLRequest("POST", document, operation_name, variables)
    services = open_services(settings)
    try:
        schema = create_schema(introspection=settings.introspection)
        executed = await execute(schema, request, build_context(services, request_id="cli"))
    except RequestError as exc:
        return {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}
    finally:
        await services.aclose()
    return {name: value for name, value in executed.result.items() if name != "extensions"}
