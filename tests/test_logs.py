"""Log lines: JSON objects (or text) on stderr, extras included, httpx kept quiet."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from graph import logs


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("httpx").level, logging.getLogger("httpcore").level)
    yield None
    root.handlers[:], level, httpx_level, httpcore_level = saved
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(httpx_level)
    logging.getLogger("httpcore").setLevel(httpcore_level)


def test_json_lines(restore_logging: object, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json", "DEBUG")
    log = logging.getLogger("graph.test")
    log.info("hello %s", "世界", extra={"request_id": "r1", "duration_ms": 1.5})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["message"] == "hello 世界"
    assert lines[0]["request_id"] == "r1"
    assert lines[0]["level"] == "INFO"
    assert lines[0]["time"].endswith("+00:00")
    assert "ValueError: boom" in lines[1]["exception"]
    assert logging.getLogger("httpx").level == logging.WARNING


def test_text_lines(restore_logging: object, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("text", "INFO")
    logging.getLogger("graph.test").warning("careful", extra={"attempt": 2})
    logging.getLogger("graph.test").warning("plain")
    logging.getLogger("graph.test").debug("hidden")
    err = capsys.readouterr().err
    assert "WARNING graph.test: careful attempt=2" in err
    assert err.rstrip().endswith("WARNING graph.test: plain")
    assert "hidden" not in err
    assert logging.getLogger().handlers[0].stream is sys.stderr  # type: ignore[attr-defined]
