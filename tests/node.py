"""The Node side of the tests, run as child processes: Apollo's own packages and The Guild's composition in
tests/federation, Apollo's in tests/apq, and the GraphQL over HTTP working group's audits (graphql-http) in
tests/graphql_http.

Locally the tests skip when node or the packages are missing (``npm ci`` in each folder installs them);
with ``CI_REQUIRE_NODE=1`` (set by .ci/run) they fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

FEDERATION_DIR = Path(__file__).parent / "federation"
PACKAGES = (
    "@apollo/composition",
    "@apollo/gateway",
    "@apollo/server",
    "@apollo/subgraph",
    "@theguild/federation-composition",
    "graphql",
)
APQ_DIR = Path(__file__).parent / "apq"
APQ_PACKAGES = ("@apollo/client", "@apollo/generate-persisted-query-manifest", "@apollo/persisted-query-lists")
GRAPHQL_HTTP_DIR = Path(__file__).parent / "graphql_http"
GRAPHQL_HTTP_PACKAGES = ("graphql-http", "graphql")
REQUIRE_VARIABLE = "CI_REQUIRE_NODE"
_START_TIMEOUT_S = 30.0
_COMPOSE_TIMEOUT_S = 60.0


def missing_node(
    directory: Path = FEDERATION_DIR,
    which: Callable[[str], str | None] = shutil.which,
    packages: Sequence[str] = PACKAGES,
) -> str | None:
    """Why the Node tests cannot run here, or None when they can."""
    if which("node") is None:
        return "node is not on PATH"
    for package in packages:
        if not (directory / "node_modules" / package / "package.json").is_file():
            return f"{package} is not installed in {directory}: run `npm ci` there (see .ci/run)"
    return None


def require_node(environ: Mapping[str, str] = os.environ, reason: str | None = None) -> None:
    """Skip the calling test when Node is missing, or fail it when the environment says Node is required."""
    if reason is None:
        return
    if environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{REQUIRE_VARIABLE}=1 but the Node tests cannot run: {reason}")
    pytest.skip(f"these tests need Node and their npm packages: {reason}")


def node_environ(authorization: str | None = None) -> dict[str, str]:
    # Without APOLLO_KEY & co. Apollo's packages never try to report usage to Apollo's cloud.
    env = {k: v for k, v in os.environ.items() if not k.startswith("APOLLO_")}
    env["NODE_ENV"] = "test"
    if authorization is not None:
        env["SUBGRAPH_AUTHORIZATION"] = authorization  # read by subgraphs.mjs, never passed on argv
    return env


@dataclass(frozen=True)
class Composition:
    returncode: int
    errors: list[dict[str, str]]
    hints: list[dict[str, str]]
    supergraph_sdl: str | None
    stderr: str

    @property
    def error_codes(self) -> list[str]:
        return [error["code"] for error in self.errors]


Composer = Literal["apollo", "hive"]
# Apollo's composition (@apollo/composition: rover, GraphOS) and The Guild's (@theguild/federation-composition:
# GraphQL Hive's registry, Mesh Compose); both scripts take the same arguments and print the same JSON.
COMPOSE_SCRIPTS: dict[Composer, str] = {"apollo": "compose.mjs", "hive": "compose-hive.mjs"}


def compose(*subgraphs: str, authorization: str | None = None, composer: Composer = "apollo") -> Composition:
    """Run ``composer``'s compose script over ``NAME=URL`` / ``NAME=FILE`` arguments."""
    script = COMPOSE_SCRIPTS[composer]
    done = subprocess.run(
        ["node", script, *subgraphs],
        cwd=FEDERATION_DIR,
        env=node_environ(authorization),
        capture_output=True,
        text=True,
        timeout=_COMPOSE_TIMEOUT_S,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise AssertionError(f"{script} failed ({done.returncode}): {done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return Composition(done.returncode, result["errors"], result["hints"], result["supergraphSdl"], done.stderr)


@contextlib.contextmanager
def started(script: str, *args: str, logs: Path, authorization: str | None = None) -> Iterator[str]:
    """Run a long-lived script that prints ``{"url": ...}`` once it listens; yield that URL, stop it on exit.

    Output goes to files, not pipes: nobody reads a pipe after start-up, and a full one would stall the process.
    """
    out, err = logs / f"{script}.stdout", logs / f"{script}.stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            ["node", script, *args], cwd=FEDERATION_DIR, env=node_environ(authorization), stdout=stdout, stderr=stderr
        )
    try:
        yield _wait_for_url(script, process, out, err)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover  (node ends on SIGTERM)
            process.kill()
            process.wait()


def _wait_for_url(script: str, process: subprocess.Popen[bytes], out: Path, err: Path) -> str:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in out.read_text().splitlines():
            with contextlib.suppress(ValueError, AttributeError):  # not JSON, or not an object
                url = json.loads(line).get("url")
                if isinstance(url, str):
                    return url
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"node {script} did not start: {err.read_text()[-2000:]}")


def run_node(
    directory: Path, *args: str, timeout: float = _COMPOSE_TIMEOUT_S, environ: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``node ARGS`` in ``directory`` to completion (output captured as text), ``environ`` added to its
    environment (secrets go there, never on argv)."""
    return subprocess.run(
        ["node", *args],
        cwd=directory,
        env={**node_environ(), **(environ or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
