"""The Dockerfile, read (no Docker engine runs here): its start command, paths and probe match the package."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from uvicorn.importer import import_from_string

from graph.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
Instruction = tuple[str, str]


def instructions(text: str) -> list[Instruction]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments and the parser directive dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages(found: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for keyword, rest in found:
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, rest))
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[list[Instruction]]:
    return stages(instructions((ROOT / "Dockerfile").read_text(encoding="utf-8")))


def only(stage: list[Instruction], keyword: str) -> str:
    [value] = [rest for key, rest in stage if key == keyword]
    return value


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list)
    return [str(word) for word in parsed]


def test_stages_on_slim_images(dockerfile: list[list[Instruction]]) -> None:
    ide, build, final = dockerfile
    assert only(ide, "FROM") == "node:20-slim AS ide"  # GraphiQL's assets, from graph/ide's lockfile
    assert only(build, "FROM") == "python:3.11-slim AS build"
    assert only(final, "FROM") == "python:3.11-slim"
    # The final stage takes only the wheels from the build stage: no sources, tests or tools from the context.
    copies = [rest for key, rest in final if key == "COPY"]
    assert copies == ["--from=build /wheels /wheels"]
    assert any(key == "RUN" and "rm -rf /wheels" in rest for key, rest in final)


def test_build_stage_copies_exist_and_are_not_ignored(dockerfile: list[list[Instruction]]) -> None:
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")
    }
    assert {"tests", "benchmarks", ".git"} <= ignored
    ide, build = dockerfile[0], dockerfile[1]
    sources = [
        word
        for stage in (ide, build)
        for key, rest in stage
        if key == "COPY" and "--from" not in rest
        for word in rest.split()[:-1]
    ]
    assert sources[-4:] == ["pyproject.toml", "README.md", "graph", "resolvers"]
    assert all(source.startswith("graph/ide/") for source in sources[:-4])
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source not in ignored
    # The assets the ide stage builds land where the package serves them from.
    assert ("COPY", "--from=ide /ide/static ./graph/ide/static") in build
    # Everything the package is made of is copied: setuptools finds graph* and resolvers*.
    assert 'include = ["graph*", "resolvers*"]' in (ROOT / "pyproject.toml").read_text()


def test_runs_as_a_non_root_user(dockerfile: list[list[Instruction]]) -> None:
    user = only(dockerfile[-1], "USER")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    assert any(key == "RUN" and f"--uid {uid}" in rest for key, rest in dockerfile[-1])


def test_no_key_or_secret_in_the_image(dockerfile: list[list[Instruction]]) -> None:
    for stage in dockerfile:
        for key, rest in stage:
            if key in {"ENV", "ARG"}:
                assert "ALIPAY_" not in rest
                assert "GRAPH_API_KEYS" not in rest
                assert "KEY" not in rest.upper()


def test_start_command_is_the_readmes_and_the_clis(dockerfile: list[list[Instruction]]) -> None:
    command = exec_form(only(dockerfile[-1], "CMD"))
    assert command[:3] == ["python", "-m", "graph"]
    assert (ROOT / "graph" / "__main__.py").exists()
    args = _parser().parse_args(command[3:])
    assert (args.command, args.host, args.port, args.demo, args.workers) == ("serve", "0.0.0.0", 8000, False, 1)  # noqa: S104
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert shlex.join(command) in readme
    assert only(dockerfile[-1], "EXPOSE") == str(args.port)
    # What `serve` hands uvicorn, in every worker: the factories must resolve to callables.
    assert callable(import_from_string("graph.app:from_environ"))
    assert callable(import_from_string("graph.app:demo_from_environ"))


def test_healthcheck_probes_healthz(dockerfile: list[list[Instruction]], graph_url: str) -> None:
    healthcheck = only(dockerfile[-1], "HEALTHCHECK")
    options, _, command_text = healthcheck.partition(" CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    command = exec_form(command_text)
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/healthz" in command[2]
    # Run the probe as Docker would, against a served app (on this test's port instead of 8000).
    probe = command[2].replace("http://127.0.0.1:8000", graph_url)
    assert subprocess.run([sys.executable, "-c", probe], timeout=30, check=False).returncode == 0
    failing = command[2].replace("http://127.0.0.1:8000/healthz", f"{graph_url}/nowhere")
    result = subprocess.run([sys.executable, "-c", failing], capture_output=True, timeout=30, check=False)
    assert result.returncode != 0  # a probe that cannot fail would prove nothing
