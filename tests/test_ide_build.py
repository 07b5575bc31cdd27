"""``python -m graph build-ide`` with real npm: a full build from the lockfile into a copy of graph/ide,
and each way it stops (no npm, npm failing, a build that copies too little).

The full build takes a few seconds with npm's cache warm (.ci/run has just run the same build).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from graph.cli import main
from graph.ide.build import build
from graph.ide.page import IDE_DIR, asset_names

SOURCES = ("package.json", "package-lock.json", "assets.json", "copy-assets.mjs")


@pytest.fixture
def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        if os.environ.get("CI_REQUIRE_BROWSER") == "1":
            pytest.fail("CI_REQUIRE_BROWSER=1 but npm is missing")
        pytest.skip("npm is missing")
    return found


def test_builds_every_asset_from_the_lockfile(npm: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    for name in SOURCES:
        shutil.copy(IDE_DIR / name, tmp_path / name)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "stale.js").write_text("from an older version", encoding="utf-8")

    assert build(tmp_path, npm=npm) == 0

    assert f"GraphiQL assets built in {tmp_path / 'static'}" in capfd.readouterr().out
    assert sorted(p.name for p in (tmp_path / "static").iterdir()) == sorted(asset_names())
    sources: dict[str, str] = json.loads((IDE_DIR / "assets.json").read_text(encoding="utf-8"))
    for name, source in sources.items():
        assert (tmp_path / "static" / name).read_bytes() == (tmp_path / "node_modules" / source).read_bytes()
    locked = json.loads((IDE_DIR / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    wanted = json.loads((IDE_DIR / "package.json").read_text(encoding="utf-8"))["dependencies"]
    for package, version in wanted.items():  # exact pins, installed as locked
        assert locked[f"node_modules/{package}"]["version"] == version
        installed = json.loads((tmp_path / "node_modules" / package / "package.json").read_text(encoding="utf-8"))
        assert installed["version"] == version
    graphiql = (tmp_path / "static" / "graphiql.min.js").read_text(encoding="utf-8")
    assert ".GraphiQL=" in graphiql[:1000]  # a UMD build: it defines the global the page uses, no bundler needed


def test_npm_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["build-ide"]) == 2
    assert "needs Node.js and npm" in capfd.readouterr().err


def test_npm_ci_failing_stops_the_build(npm: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    shutil.copy(IDE_DIR / "package.json", tmp_path / "package.json")  # no lockfile: npm ci refuses
    assert build(tmp_path, npm=npm) == 1
    assert "npm ci failed" in capfd.readouterr().err
    assert not (tmp_path / "static").exists()


def test_a_build_that_copies_too_little_fails(npm: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    package = {"name": "nothing", "private": True, "scripts": {"build": "node -e 0"}}
    (tmp_path / "package.json").write_text(json.dumps(package), encoding="utf-8")
    lock = {"name": "nothing", "lockfileVersion": 3, "requires": True, "packages": {"": {"name": "nothing"}}}
    (tmp_path / "package-lock.json").write_text(json.dumps(lock), encoding="utf-8")
    assert build(tmp_path, npm=npm) == 1
    assert "incomplete" in capfd.readouterr().err
