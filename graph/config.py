"""Settings from the environment (docs/configuration.md), validated once at start-up.

Every problem is a ``ConfigError`` whose one-line message names the variable; values of secret
variables are never quoted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from graph.execution.manifest import Manifest, ManifestError, parse_manifest
from graph.fleet.seal import MIN_KEY_BYTES
from graph.gateway.credentials import Credentials
from graph.gateway.v3 import DEFAULT_V3_GATEWAY_URL
from graph.keyfiles import CERT_FILES as CERT_FILES, ConfigError as ConfigError, credentials, optional_secret, read

DEFAULT_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
PROTOCOLS = ("v2", "v3")
PERSISTED_MODES = ("off", "apq", "safelist")
LOG_FORMATS = ("auto", "json", "text")  # auto: text at a terminal, JSON anywhere else (graph.observability.logs)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

_API_KEY = re.compile(r"[\x21-\x7e]{1,256}")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    credentials: Credentials | None  # None only in demo mode, where the sandbox makes throw-away keys
    demo: bool = False
    gateway_url: str = DEFAULT_GATEWAY_URL  # v2: the gateway.do URL; v3: the base URL
    protocol: str = "v2"  # "v2" (gateway.do) or "v3" (OpenAPI 3)
    timeout_s: float = 5.0
    retries: int = 2
    max_concurrency: int = 16
    cache_url: str = field(default="memory://", repr=False)  # a Redis URL may carry a password
    cache_ttl_s: float = 60.0
    cache_error_ttl_s: float = 10.0
    cache_max_entries: int = 10000
    cache_max_bytes: int = 32 * 1024 * 1024  # each in-process cache: answers, responses, APQ documents, parsed ones
    response_max_cached_bytes: int = 256 * 1024  # a larger response is served, not kept
    api_keys: frozenset[str] = field(default=frozenset(), repr=False)
    allow_anonymous: bool = False
    introspection: bool = True
    graphiql: bool = True
    max_bundle_ids: int = 10
    max_upstream_calls: int = 30
    max_body_bytes: int = 65536
    rate_limit_per_min: int = 600  # per API key (per client address for anonymous callers); 0: no limit
    auth_failures_per_min: int = 30  # refused keys per client address before it is refused outright; 0: no limit
    max_depth: int = 15  # the standard introspection query (GraphiQL, Apollo tools) is 15 deep
    max_aliases: int = 30
    max_tokens: int = 2000
    allow_batching: bool = False
    max_batch_operations: int = 10  # only read when batching is allowed
    operation_deadline_s: float = 15.0  # one operation's wait for the gateway, retries and backoff included
    breaker_failures: int = 5  # consecutive gateway failures that open the circuit; 0: never opens
    breaker_reset_s: float = 10.0  # how long an open circuit waits before letting one probe call through
    log_format: str = "auto"  # resolved where the handler is made: only then is it known where stderr goes
    log_level: str = "INFO"
    metrics_operations: frozenset[str] = frozenset()  # operation names that get their own metric label
    trace_query_text: bool = False  # record the operation's text on its span (literals may hold data)
    shutdown_grace_s: int = 20  # how long a stopping server lets requests in flight finish
    persisted_queries: str = "apq"  # "off", "apq" (Apollo's automatic persisted queries) or "safelist"
    operations: Manifest | None = field(default=None, repr=False)  # GRAPH_OPERATIONS_FILE, read at start-up
    apq_max_documents: int = 10000  # bound of the in-memory store of registered documents
    apq_ttl_s: float = 86400.0  # how long a registered document is kept (memory and Redis)
    request_read_timeout_s: float = 10.0  # receiving one whole request, headers and body (then 408)
    max_connections: int = 0  # open connections per process; 0: what the file limit leaves (graph.http.server)
    keep_alive_s: int = 5  # an idle connection's life between requests (behind a proxy: above its idle timeout)
    apq_max_document_bytes: int = 16 * 1024  # a larger document is refused at registration
    cache_min_refresh_s: float = 5.0  # Cache-Control: no-cache refreshes one key at most this often
    cache_stale_s: float = 300.0  # an expired answer may still serve this long while the gateway is unavailable
    max_calls_per_min: int = 600  # gateway calls per merchant per minute, shared by the fleet; 0: no budget
    # Authenticates what instances share through Redis (graph.fleet.seal); None: derived from the app private key.
    cache_signing_key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, *, demo: bool = False) -> Settings:
        env = os.environ if environ is None else environ
        protocol = env.get("ALIPAY_PROTOCOL", "v2").strip().lower() or "v2"
        if protocol not in PROTOCOLS:
            raise ConfigError("ALIPAY_PROTOCOL: expected v2 or v3")
        log_format = env.get("GRAPH_LOG_FORMAT", "auto").strip().lower() or "auto"
        if log_format not in LOG_FORMATS:
            raise ConfigError("GRAPH_LOG_FORMAT: expected auto, json or text")
        log_level = env.get("GRAPH_LOG_LEVEL", "INFO").strip().upper()
        if log_level not in _LEVELS:  # a fixed list: libraries register extra names (uvicorn adds TRACE)
            raise ConfigError("GRAPH_LOG_LEVEL: expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
        persisted = env.get("GRAPH_PERSISTED_QUERIES", "").strip().lower() or "apq"
        if persisted not in PERSISTED_MODES:
            raise ConfigError("GRAPH_PERSISTED_QUERIES: expected off, apq or safelist")
        return cls(
            credentials=None if demo else credentials(env, protocol),
            demo=demo,
            gateway_url=_url(env.get("ALIPAY_GATEWAY_URL", "").strip(), protocol),
            protocol=protocol,
            timeout_s=_number(env, "ALIPAY_TIMEOUT_S", 5.0, float, minimum=0.001, maximum=300),
            retries=_number(env, "ALIPAY_RETRIES", 2, int, minimum=0, maximum=10),
            max_concurrency=_number(env, "GRAPH_MAX_CONCURRENCY", 16, int, minimum=1, maximum=1024),
            cache_url=_cache_url(env.get("GRAPH_CACHE_URL", "").strip() or "memory://"),
            cache_ttl_s=_number(env, "GRAPH_CACHE_TTL_S", 60.0, float, minimum=0, maximum=86400),
            cache_error_ttl_s=_number(env, "GRAPH_CACHE_ERROR_TTL_S", 10.0, float, minimum=0, maximum=86400),
            cache_max_entries=_number(env, "GRAPH_CACHE_MAX_ENTRIES", 10000, int, minimum=1, maximum=10**8),
            cache_max_bytes=_number(env, "GRAPH_CACHE_MAX_BYTES", 32 << 20, int, minimum=1 << 16, maximum=1 << 40),
            response_max_cached_bytes=_number(env, "GRAPH_RESPONSE_MAX_CACHED_BYTES", 256 << 10, int, minimum=0),
            api_keys=_api_keys(env),
            allow_anonymous=demo or _flag(env, "GRAPH_ALLOW_ANONYMOUS", False),
            introspection=_flag(env, "GRAPH_INTROSPECTION", True),
            graphiql=_flag(env, "GRAPH_GRAPHIQL", True),
            max_bundle_ids=_number(env, "GRAPH_MAX_BUNDLE_IDS", 10, int, minimum=1),
            max_upstream_calls=_number(env, "GRAPH_MAX_UPSTREAM_CALLS", 30, int, minimum=1),
            max_body_bytes=_number(env, "GRAPH_MAX_BODY_BYTES", 65536, int, minimum=1024),
            rate_limit_per_min=_number(env, "GRAPH_RATE_LIMIT_PER_MIN", 600, int, minimum=0),
            auth_failures_per_min=_number(env, "GRAPH_AUTH_FAILURES_PER_MIN", 30, int, minimum=0),
            max_depth=_number(env, "GRAPH_MAX_DEPTH", 15, int, minimum=1, maximum=200),
            max_aliases=_number(env, "GRAPH_MAX_ALIASES", 30, int, minimum=0, maximum=100000),
            max_tokens=_number(env, "GRAPH_MAX_TOKENS", 2000, int, minimum=10, maximum=1000000),
            allow_batching=_flag(env, "GRAPH_ALLOW_BATCHING", False),
            max_batch_operations=_number(env, "GRAPH_MAX_BATCH_OPERATIONS", 10, int, minimum=1, maximum=1000),
            operation_deadline_s=_number(env, "GRAPH_OPERATION_DEADLINE_S", 15.0, float, minimum=0.01, maximum=3600),
            breaker_failures=_number(env, "GRAPH_BREAKER_FAILURES", 5, int, minimum=0, maximum=10000),
            breaker_reset_s=_number(env, "GRAPH_BREAKER_RESET_S", 10.0, float, minimum=0.01, maximum=3600),
            log_format=log_format,
            log_level=log_level,
            metrics_operations=_operation_names(env.get("GRAPH_METRICS_OPERATIONS", "")),
            trace_query_text=_flag(env, "GRAPH_TRACE_QUERY_TEXT", False),
            shutdown_grace_s=_number(env, "GRAPH_SHUTDOWN_GRACE_S", 20, int, minimum=0, maximum=3600),
            persisted_queries=persisted,
            operations=_operations(env.get("GRAPH_OPERATIONS_FILE", "").strip(), persisted),
            apq_max_documents=_number(env, "GRAPH_APQ_MAX_DOCUMENTS", 10000, int, minimum=1, maximum=10**7),
            apq_ttl_s=_number(env, "GRAPH_APQ_TTL_S", 86400.0, float, minimum=1, maximum=30 * 86400),
            request_read_timeout_s=_number(env, "GRAPH_REQUEST_READ_TIMEOUT_S", 10.0, float, minimum=0.1, maximum=600),
            max_connections=_number(env, "GRAPH_MAX_CONNECTIONS", 0, int, minimum=0, maximum=10**7),
            keep_alive_s=_number(env, "GRAPH_KEEP_ALIVE_S", 5, int, minimum=1, maximum=3600),
            apq_max_document_bytes=_number(env, "GRAPH_APQ_MAX_DOCUMENT_BYTES", 16 << 10, int, minimum=64),
            cache_min_refresh_s=_number(env, "GRAPH_CACHE_MIN_REFRESH_S", 5.0, float, minimum=0, maximum=86400),
            cache_stale_s=_number(env, "GRAPH_CACHE_STALE_S", 300.0, float, minimum=0, maximum=7 * 86400),
            max_calls_per_min=_number(env, "ALIPAY_MAX_CALLS_PER_MIN", 600, int, minimum=0, maximum=10**7),
            cache_signing_key=_signing_key(env),
        )

    @property
    def closed(self) -> bool:
        """True when no caller can get in: no API keys and anonymous access not allowed."""
        return not self.api_keys and not self.allow_anonymous

    def summary(self) -> dict[str, object]:
        """What an operator checks at start-up, with nothing secret: no keys, API keys or cache password."""
        cache = urlsplit(self.cache_url)
        if self.api_keys:
            auth = f"api keys ({len(self.api_keys)})"
        else:
            auth = "anonymous" if self.allow_anonymous else "closed"
        return {
            "app_id": self.credentials.app_id if self.credentials else "demo",
            "gateway": "in-process sandbox" if self.demo else _host(self.gateway_url),
            "protocol": self.protocol,
            "sign_type": self.credentials.sign_type.value if self.credentials else "RSA2",
            "keys": "certificates" if self.credentials and self.credentials.certs else "public key",
            "encryption": "AES" if self.credentials and self.credentials.encrypt_key else "off",
            "cache": "memory" if cache.scheme == "memory" else f"redis {_host(self.cache_url)}{cache.path or '/0'}",
            "cache_signing": "off (memory)"
            if cache.scheme == "memory"
            else "GRAPH_CACHE_SIGNING_KEY"
            if self.cache_signing_key is not None
            else "derived from the app private key",
            "auth": auth,
            "timeout_s": self.timeout_s,
            "retries": self.retries,
            "max_concurrency": self.max_concurrency,
            "max_upstream_calls": self.max_upstream_calls,
            "max_body_bytes": self.max_body_bytes,
            "rate_limit_per_min": self.rate_limit_per_min,
            "operation_deadline_s": self.operation_deadline_s,
            "breaker": f"{self.breaker_failures} failures, {self.breaker_reset_s:g} s"
            if self.breaker_failures
            else "off",
            "batching": self.max_batch_operations if self.allow_batching else "off",
            "cache_ttl_s": self.cache_ttl_s,
            "cache_max_bytes": self.cache_max_bytes,
            "shutdown_grace_s": self.shutdown_grace_s,
            "persisted_queries": self.persisted_queries
            + (f" ({len(self.operations.operations)} operations)" if self.operations is not None else ""),
        }


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:  # unset and set-but-empty both mean "the default", as for every other variable
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}: expected true or false")


def _number(
    env: Mapping[str, str], name: str, default: T, kind: Callable[[str], T], *, minimum: float, maximum: float = 10**9
) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a {'whole ' if kind is int else ''}number, got {raw!r}") from None
    if not minimum <= value <= maximum:  # type: ignore[operator]  # T is int or float here; NaN fails too
        raise ConfigError(f"{name}: must be between {minimum} and {maximum}")
    return value


def _host(url: str) -> str:
    """host[:port] of a URL, without whatever user or password it carries."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _operation_names(raw: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in raw.split(",") if name.strip())
    if len(names) > 200 or not all(re.fullmatch(r"[_A-Za-z][_0-9A-Za-z]{0,99}", name) for name in names):
        raise ConfigError("GRAPH_METRICS_OPERATIONS: expected at most 200 comma-separated GraphQL operation names")
    return names


def _url(raw: str, protocol: str) -> str:
    example = DEFAULT_GATEWAY_URL if protocol == "v2" else DEFAULT_V3_GATEWAY_URL
    if not raw:
        return example
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"ALIPAY_GATEWAY_URL: expected an http(s) URL such as {example}")
    if protocol == "v3" and parts.path.rstrip("/").endswith("/gateway.do"):
        raise ConfigError(f"ALIPAY_GATEWAY_URL: with ALIPAY_PROTOCOL=v3, give the base URL (e.g. {example})")
    return raw


def _cache_url(raw: str) -> str:
    parts = urlsplit(raw)
    if raw in {"memory://", "memory:"}:
        return "memory://"
    problem = "expected memory:// or redis://[:password@]host[:port][/db]"
    if parts.scheme != "redis" or not parts.hostname:
        raise ConfigError(f"GRAPH_CACHE_URL: {problem}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    db = parts.path.lstrip("/")
    if port == -1 or (db and not db.isdigit()) or parts.query:
        raise ConfigError(f"GRAPH_CACHE_URL: {problem}")  # the URL itself is not quoted: it may hold a password
    return raw


def _api_keys(env: Mapping[str, str]) -> frozenset[str]:
    """``GRAPH_API_KEYS`` (comma-separated) or ``GRAPH_API_KEYS_FILE`` (one a line, or comma-separated)."""
    inline, path = env.get("GRAPH_API_KEYS", "").strip(), env.get("GRAPH_API_KEYS_FILE", "").strip()
    if inline and path:
        raise ConfigError("GRAPH_API_KEYS and GRAPH_API_KEYS_FILE: set one, not both")
    name, text = ("GRAPH_API_KEYS_FILE", read(path, "GRAPH_API_KEYS_FILE")) if path else ("GRAPH_API_KEYS", inline)
    keys = [key.strip() for key in re.split(r"[,\n]", text) if key.strip()]
    for position, key in enumerate(keys, 1):
        # A key is sent as "Authorization: Bearer KEY": anything but visible ASCII could never match. Never quoted.
        if not _API_KEY.fullmatch(key):
            raise ConfigError(f"{name}: key number {position} holds characters other than visible ASCII")
    return frozenset(keys)


def _signing_key(env: Mapping[str, str]) -> bytes | None:
    """``GRAPH_CACHE_SIGNING_KEY`` or ``_FILE``: a secret string of 32 to 1024 bytes (a file's line break and
    surrounding white space dropped). Never quoted: a message names the variable and the rule only."""
    found = optional_secret(env, "GRAPH_CACHE_SIGNING_KEY")
    if found is None:
        return None
    text, name = found
    key = text.strip().encode()
    if not MIN_KEY_BYTES <= len(key) <= 1024:
        raise ConfigError(
            f"{name}: expected a secret of {MIN_KEY_BYTES} to 1024 bytes (e.g. the output of openssl rand -base64 32)"
        )
    return key


def _operations(path: str, mode: str) -> Manifest | None:
    """The manifest of allowed (safelist) or pre-registered (apq) operations."""
    if not path:
        if mode == "safelist":
            raise ConfigError("GRAPH_OPERATIONS_FILE is required with GRAPH_PERSISTED_QUERIES=safelist")
        return None
    if mode == "off":
        raise ConfigError("GRAPH_OPERATIONS_FILE: persisted queries are off (GRAPH_PERSISTED_QUERIES=off)")
    try:
        return parse_manifest(read(path, "GRAPH_OPERATIONS_FILE"))
    except ManifestError as exc:
        raise ConfigError(f"GRAPH_OPERATIONS_FILE: {path}: {exc}") from None
