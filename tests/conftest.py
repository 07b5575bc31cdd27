"""Shared fixtures: throw-away keys, the sandbox gateway served over real HTTP, the service served over real HTTP."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from graph.app import create_app
from graph.config import Settings
from graph.gateway.client import Backoff, Credentials
from graph.gateway.keys import load_private_key, load_public_key
from graph.sandbox import DemoCredentials, SandboxGateway, generate_credentials
from tests.keyfixtures import private_pem
from tests.live_client import VERSIONS
from tests.processes import Service
from tests.redis_server import RedisServer
from tests.secrets_audit import SECRETS, Capture, WireSigns, capture_text
from tests.servers import serve

MERCHANT_TOKEN = "202611BBmerchantA000000000000000000000001"
OTHER_MERCHANT_TOKEN = "202611BBmerchantB000000000000000000000002"
API_KEY = "gk_test_5b0c9d2e8f7a4c1b9e3d6f0a2c4e8b1d"
OTHER_API_KEY = "gk_test_0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b"
NO_WAIT = Backoff(base_s=0.0, cap_s=0.0)
SECRETS.add(MERCHANT_TOKEN, OTHER_MERCHANT_TOKEN, API_KEY, OTHER_API_KEY)


@pytest.fixture(autouse=True)
def _secrets_audit() -> Iterator[None]:
    """Every test's logging at DEBUG, httpx and httpcore included, searched for the session's secrets afterwards."""
    capture = Capture()
    root = logging.getLogger()
    loggers = [root, logging.getLogger("httpx"), logging.getLogger("httpcore")]
    levels = [logger.level for logger in loggers]
    root.addHandler(capture)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    SECRETS.signs.clear()
    try:
        yield
    finally:
        root.removeHandler(capture)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    leaked = SECRETS.found_in(capture_text(capture.records))
    assert not leaked, f"secrets in the log at DEBUG: {leaked}"


@pytest.fixture(scope="session")
def demo_credentials() -> DemoCredentials:
    creds = generate_credentials()
    SECRETS.add_base64(creds.app_private_key_pem)
    SECRETS.add_base64(private_pem(creds.alipay_private_key))
    return creds


@pytest.fixture(scope="session")
def credentials(demo_credentials: DemoCredentials) -> Credentials:
    return Credentials(
        app_id=demo_credentials.app_id,
        private_key=load_private_key(demo_credentials.app_private_key_pem, "test app key"),
        alipay_public_key=load_public_key(demo_credentials.alipay_public_key_pem, "test Alipay key"),
    )


@pytest.fixture(scope="session")
def _served_sandbox(demo_credentials: DemoCredentials) -> Iterator[tuple[SandboxGateway, str]]:
    gateway = SandboxGateway.for_credentials(demo_credentials, auth_tokens=[MERCHANT_TOKEN, OTHER_MERCHANT_TOKEN])
    with serve(WireSigns(gateway.app)) as url:
        yield gateway, f"{url}/gateway.do"


@pytest.fixture
def sandbox(_served_sandbox: tuple[SandboxGateway, str]) -> Iterator[SandboxGateway]:
    """The session's sandbox gateway, with an empty call log and no queued faults for each test."""
    gateway = _served_sandbox[0]
    gateway.reset()
    yield gateway
    gateway.reset()


@pytest.fixture
def gateway_url(sandbox: SandboxGateway, _served_sandbox: tuple[SandboxGateway, str]) -> str:
    return _served_sandbox[1]


@pytest.fixture
def settings(credentials: Credentials, gateway_url: str) -> Settings:
    return Settings(credentials=credentials, gateway_url=gateway_url, allow_anonymous=True, timeout_s=2.0)


@pytest.fixture
def start_app(settings: Settings) -> Iterator[Callable[..., str]]:
    """Serve the service over real HTTP with ``settings`` changed by keyword; returns its base URL."""
    with contextlib.ExitStack() as stack:

        def start(**changes: Any) -> str:
            app = create_app(replace(settings, **changes))
            return stack.enter_context(serve(app, lifespan="on"))

        yield start


@pytest.fixture
def graph_url(start_app: Callable[..., str]) -> str:
    return start_app()


@pytest.fixture(scope="module")
def shared_graph_url(credentials: Credentials, _served_sandbox: tuple[SandboxGateway, str]) -> Iterator[str]:
    """One service for a module of many small cases (starting one costs ~0.2 s): anonymous, no rate limit.
    Its cache lives as long as the module; ask for ``sandbox`` too to count a test's gateway calls."""
    settings = Settings(
        credentials=credentials,
        gateway_url=_served_sandbox[1],
        allow_anonymous=True,
        timeout_s=2.0,
        rate_limit_per_min=0,
        cache_min_refresh_s=0,  # its cases send no-cache to count what each costs upstream
        max_calls_per_min=0,
    )
    with serve(create_app(settings), lifespan="on") as url:
        yield url


@pytest.fixture(scope="session")
def _redis_process() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(_redis_process: RedisServer) -> Iterator[RedisServer]:
    """The session's redis-server, emptied for each test and running again after it (tests may stop it)."""
    if _redis_process.process is None:
        _redis_process.start()
    _redis_process.command("FLUSHALL")
    yield _redis_process
    if _redis_process.process is None:
        _redis_process.start()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start ``python -m graph serve`` processes (env, arguments); all stopped after the test."""
    started: list[Service] = []

    def start(env: dict[str, str], *args: str) -> Service:
        started.append(Service(env, tmp_path / f"service-{len(started)}.log", *args))
        return started[-1]

    yield start
    for one in started:
        one.stop()


@pytest.fixture(scope="session")
def _live_sandbox(demo_credentials: DemoCredentials) -> Iterator[tuple[SandboxGateway, str]]:
    gateway = SandboxGateway(
        alipay_private_key=demo_credentials.alipay_private_key,
        apps={demo_credentials.app_id: demo_credentials.app_public_key},
        auth_tokens=[MERCHANT_TOKEN],
        versions=VERSIONS,
    )
    with serve(WireSigns(gateway.app)) as url:
        yield gateway, f"{url}/gateway.do"


@pytest.fixture
def live_sandbox(_live_sandbox: tuple[SandboxGateway, str]) -> Iterator[SandboxGateway]:
    """A sandbox serving tests/live_client.py's VERSIONS, which a test changes while subscribers watch; the
    versions, the call log and the faults are put back after each test."""
    saved = dict(VERSIONS)
    _live_sandbox[0].reset()
    yield _live_sandbox[0]
    VERSIONS.clear()
    VERSIONS.update(saved)
    _live_sandbox[0].reset()


@pytest.fixture
def live_gateway_url(live_sandbox: SandboxGateway, _live_sandbox: tuple[SandboxGateway, str]) -> str:
    return _live_sandbox[1]
