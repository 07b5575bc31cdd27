"""Persisted queries over real HTTP: Apollo's APQ protocol, HTTP caching of hash-only GETs, the safelist, the bound.

Apollo Client itself speaks to the service in tests/test_persisted_apollo.py; here the wire is spelled out by hand.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from graph.execution.manifest import Manifest, Operation, operation_id
from graph.http.persisted import RECENT_BYTES
from graph.sandbox import SandboxGateway
from tests.redis_server import RedisServer
from tests.test_metrics import scrape, value

QUERY = "query Status($v: String!) { miniAppVersion(appVersion: $v) { appVersion status } }"
VARIABLES = {"v": "0.0.1"}
NOT_FOUND = {"errors": [{"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def post(url: str, body: Any, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        if isinstance(body, bytes):
            return await http.post("/graphql", content=body, headers=headers)
        return await http.post("/graphql", json=body, headers=headers)


async def get(url: str, params: dict[str, Any], **headers: str) -> httpx.Response:
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        return await http.get("/graphql", params=encoded, headers=headers)


async def register(url: str, query: str = QUERY, variables: dict[str, Any] | None = None) -> httpx.Response:
    body = {"query": query, "variables": variables or VARIABLES, "extensions": persisted(sha(query))}
    return await post(url, body)


def hash_only(query: str = QUERY, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"variables": variables or VARIABLES, "extensions": persisted(sha(query))}


def hit(response: httpx.Response) -> bool:
    return bool(response.headers.get("x-response-cache") == "hit")


def code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


# --- APQ -----------------------------------------------------------------------------------------------------


async def test_unknown_hash_then_text_then_hash_only_hit(graph_url: str, sandbox: SandboxGateway) -> None:
    missed = await post(graph_url, hash_only())
    assert (missed.status_code, missed.json()) == (200, NOT_FOUND)  # what Apollo Client retries on
    assert missed.headers["cache-control"] == "private, no-cache, must-revalidate"
    assert sandbox.calls == []  # refused before anything ran

    registered = await register(graph_url)
    assert registered.json()["data"] == {"miniAppVersion": {"appVersion": "0.0.1", "status": "RELEASE"}}
    assert not hit(registered)

    again = await post(graph_url, hash_only())
    assert again.json()["data"] == registered.json()["data"]
    assert hit(again)  # the hash-only request became the same operation, answered by the response cache
    assert len(sandbox.calls) == 1
    other = await post(graph_url, hash_only(variables={"v": "0.0.2"}))  # the same document, other variables
    assert other.json()["data"]["miniAppVersion"]["appVersion"] == "0.0.2"
    assert len(sandbox.calls) == 2


async def test_a_text_that_does_not_hash_to_the_hash_is_refused(graph_url: str, sandbox: SandboxGateway) -> None:
    forged = {"query": "{ __typename }", "extensions": persisted(sha(QUERY))}
    refused = await post(graph_url, forged)
    assert refused.status_code == 400
    assert refused.json() == {
        "errors": [{"message": "provided sha does not match query", "extensions": {"code": "BAD_USER_INPUT"}}]
    }
    assert (await post(graph_url, hash_only())).json() == NOT_FOUND  # nothing was registered under the hash
    assert sandbox.calls == []


@pytest.mark.parametrize(
    ("extensions", "message"),
    [
        ({"persistedQuery": {"version": 2, "sha256Hash": "a" * 64}}, "only version 1"),
        ({"persistedQuery": {"version": 1}}, "sha256Hash must be a string"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "not-a-hash"}}, "64 hexadecimal digits"),
        ({"persistedQuery": "yes"}, "only version 1"),
    ],
)
async def test_malformed_persisted_queries_are_bad_input(
    graph_url: str, extensions: dict[str, Any], message: str
) -> None:
    refused = await post(graph_url, {"extensions": extensions})
    assert (refused.status_code, code(refused)) == (400, "BAD_USER_INPUT")
    assert message in refused.json()["errors"][0]["message"]


async def test_query_must_be_text(graph_url: str) -> None:
    refused = await post(graph_url, {"query": 42, "extensions": persisted(sha(QUERY))})
    assert (refused.status_code, code(refused)) == (400, "BAD_REQUEST")  # not a GraphQL request at all


async def test_hashes_are_hexadecimal_in_either_case(graph_url: str) -> None:
    upper = {"query": QUERY, "variables": VARIABLES, "extensions": persisted(sha(QUERY).upper())}
    assert (await post(graph_url, upper)).json()["data"]["miniAppVersion"]["status"] == "RELEASE"
    assert (await post(graph_url, hash_only())).json()["data"]["miniAppVersion"]["status"] == "RELEASE"


async def test_only_documents_that_ran_are_registered(graph_url: str) -> None:
    invalid = "query Broken { miniAppVersion(appVersion: 1) { noSuchField } }"
    answered = await register(graph_url, invalid)
    assert "data" not in answered.json()
    assert answered.json()["errors"]
    assert (await post(graph_url, hash_only(invalid))).json() == NOT_FOUND


async def test_other_extensions_are_passed_on_and_apollos_client_name_is_dropped(graph_url: str) -> None:
    await register(graph_url)
    extended = hash_only()
    # Unknown to us and read by nothing that runs: the answer is the same, so the response cache serves it.
    extended["extensions"]["tracing"] = True
    assert hit(await post(graph_url, extended))
    # Apollo Client 4 names itself on every request; that alone must not keep the response cache out.
    library = {"clientLibrary": {"name": "@apollo/client", "version": "4.3.8"}}
    plain = {"query": QUERY, "variables": VARIABLES, "extensions": library}
    assert hit(await post(graph_url, plain))
    with_hash = hash_only()
    with_hash["extensions"].update(library)
    assert hit(await post(graph_url, with_hash))


async def test_a_text_request_without_the_extension_is_untouched(graph_url: str) -> None:
    plain = await post(graph_url, {"query": QUERY, "variables": VARIABLES})
    assert plain.json()["data"]["miniAppVersion"]["status"] == "RELEASE"
    assert "cache-control" not in plain.headers
    assert (await post(graph_url, hash_only())).json() == NOT_FOUND  # plain requests register nothing


async def test_unreadable_requests_with_the_extension_reach_strawberrys_errors(graph_url: str) -> None:
    broken = await post(graph_url, b'{"extensions": {"persistedQuery": ', **{"Content-Type": "application/json"})
    assert broken.status_code == 400
    batch = await post(graph_url, [hash_only()])
    assert batch.status_code == 400
    no_query = await post(graph_url, {"extensions": {"clientLibrary": {"name": "@apollo/client"}}})
    assert no_query.status_code == 400  # "No GraphQL query found in the request"


async def test_strawberrys_own_refusals_pass_through_and_register_nothing(graph_url: str) -> None:
    wrong_variables = {"query": QUERY, "variables": "v=0.0.1", "extensions": persisted(sha(QUERY))}
    refused = await post(graph_url, wrong_variables)
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/json"  # graph.endpoint: every refusal is JSON
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert (await post(graph_url, hash_only())).json() == NOT_FOUND
    await register(graph_url)
    unreadable = await get(graph_url, {"variables": "{", "extensions": persisted(sha(QUERY))})
    assert unreadable.status_code == 400
    assert "cache-control" not in unreadable.headers


async def test_a_large_body_read_in_pieces_but_not_registered(graph_url: str, sandbox: SandboxGateway) -> None:
    padding = "#" + "x" * 60000 + "\n"  # a comment: the document is the same operation
    plain = await post(graph_url, {"query": padding + QUERY, "variables": {"v": "0.0.1"}})
    assert plain.json()["data"]["miniAppVersion"]["status"] == "RELEASE"  # as text, it runs
    calls = len(sandbox.calls)
    big = await register(graph_url, padding + QUERY)  # over GRAPH_APQ_MAX_DOCUMENT_BYTES (16 KiB)
    assert big.status_code == 400
    assert big.json() == {
        "errors": [
            {
                "message": f"the document is {len(padding + QUERY)} bytes; persisted queries are registered up to 16384"
                " (GRAPH_APQ_MAX_DOCUMENT_BYTES): send it without persistedQuery",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }
    assert len(sandbox.calls) == calls  # refused before anything ran
    assert (await post(graph_url, hash_only(padding + QUERY))).json() == NOT_FOUND  # and never kept


# --- HTTP caching of GETs ------------------------------------------------------------------------------------


async def test_hash_only_gets_are_cacheable_and_revalidate_with_304(graph_url: str, sandbox: SandboxGateway) -> None:
    params = {"variables": VARIABLES, "extensions": persisted(sha(QUERY))}
    missed = await get(graph_url, params)
    assert missed.json() == NOT_FOUND
    assert missed.headers["cache-control"] == "private, no-cache, must-revalidate"
    await register(graph_url)

    answered = await get(graph_url, params)
    assert hit(answered)
    assert answered.json()["data"]["miniAppVersion"]["status"] == "RELEASE"
    max_age = int(answered.headers["cache-control"].removeprefix("private, max-age="))
    assert 55 <= max_age <= 60  # the answer's lifetime left (GRAPH_CACHE_TTL_S=60 by default)
    etag = answered.headers["etag"]
    assert etag.startswith('W/"')
    assert answered.headers["vary"] == "Accept, Authorization, X-Alipay-App-Auth-Token"

    revalidated = await get(graph_url, params, **{"If-None-Match": etag})
    assert (revalidated.status_code, revalidated.content) == (304, b"")
    assert revalidated.headers["etag"] == etag
    assert "content-type" not in revalidated.headers
    assert revalidated.headers["x-request-id"]
    assert (await get(graph_url, params, **{"If-None-Match": f'"other", {etag}'})).status_code == 304
    assert (await get(graph_url, params, **{"If-None-Match": "*"})).status_code == 304
    assert (await get(graph_url, params, **{"If-None-Match": '"other"'})).status_code == 200
    # After a second the answer is a second older (extensions.cacheAge): same data, so the same weak ETag.
    await asyncio.sleep(1.1)
    later = await get(graph_url, params)
    assert later.json()["extensions"]["cacheAge"] >= 1
    assert later.headers["etag"] == etag
    assert len(sandbox.calls) == 1


async def test_a_fresh_get_answer_carries_its_lifetime_too(graph_url: str) -> None:
    await register(graph_url, variables={"v": "0.1.0"})  # registers the document; caches the 0.1.0 answer only
    fresh = await get(graph_url, {"variables": VARIABLES, "extensions": persisted(sha(QUERY))})
    assert not hit(fresh)
    assert fresh.headers["cache-control"].startswith("private, max-age=")
    assert "etag" in fresh.headers


async def test_answers_that_may_not_be_reused_are_not_stored(start_app: Callable[..., str]) -> None:
    url = start_app(cache_ttl_s=0)
    await register(url)
    answered = await get(url, {"variables": VARIABLES, "extensions": persisted(sha(QUERY))})
    assert answered.json()["data"]["miniAppVersion"]["status"] == "RELEASE"
    assert answered.headers["cache-control"] == "no-store"
    assert "etag" not in answered.headers


async def test_a_get_with_text_and_hash_registers_and_is_cacheable(graph_url: str) -> None:
    both = {"query": QUERY, "variables": VARIABLES, "extensions": persisted(sha(QUERY))}
    answered = await get(graph_url, both)
    assert answered.json()["data"]["miniAppVersion"]["status"] == "RELEASE"
    assert "etag" in answered.headers
    assert hit(await post(graph_url, hash_only()))


async def test_refusals_before_the_response_pass_through_untouched(graph_url: str) -> None:
    await register(graph_url)
    params = {"variables": {"v": 1}, "extensions": persisted(sha(QUERY))}  # a variable of the wrong type
    answered = await get(graph_url, params)
    assert answered.json()["errors"]
    assert answered.headers.get("cache-control") == "no-store"


# --- off -----------------------------------------------------------------------------------------------------


async def test_off_answers_not_supported_and_runs_text(start_app: Callable[..., str]) -> None:
    url = start_app(persisted_queries="off")
    refused = await post(url, hash_only())
    assert refused.status_code == 200
    assert refused.json()["errors"][0] == {
        "message": "PersistedQueryNotSupported",
        "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"},
    }
    assert (await register(url)).json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
    assert (await post(url, {"query": QUERY, "variables": VARIABLES})).json()["data"]["miniAppVersion"]


# --- safelist ------------------------------------------------------------------------------------------------

LISTED = "query Listed($v: String!) {\n  miniAppVersion(appVersion: $v) {\n    appName\n    status\n  }\n}"
CUSTOM_ID = "listed-v1"  # manifests may carry ids of their own (createOperationId)
MANIFEST = Manifest(
    (
        Operation(operation_id(LISTED), "Listed", "query", LISTED),
        Operation(CUSTOM_ID, "Listed", "query", LISTED),
    )
)


@pytest.fixture
def safelist_url(start_app: Callable[..., str]) -> str:
    return start_app(persisted_queries="safelist", operations=MANIFEST)


async def test_safelist_runs_listed_operations_by_id_or_text(safelist_url: str, sandbox: SandboxGateway) -> None:
    by_id = await post(safelist_url, hash_only(LISTED))
    assert by_id.json()["data"]["miniAppVersion"]["status"] == "RELEASE"
    assert hit(await post(safelist_url, {"variables": VARIABLES, "extensions": persisted(CUSTOM_ID)}))
    assert hit(await post(safelist_url, {"query": LISTED, "variables": VARIABLES}))
    respaced = "query Listed($v: String!) { miniAppVersion(appVersion: $v) { appName, status } }  # same"
    assert hit(await post(safelist_url, {"query": respaced, "variables": VARIABLES}))
    by_get = await get(safelist_url, {"variables": VARIABLES, "extensions": persisted(CUSTOM_ID)})
    assert hit(by_get)
    assert "etag" in by_get.headers
    assert len(sandbox.calls) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"query": QUERY, "variables": VARIABLES},
        {"query": "{ __schema { types { name } } }"},  # introspection too: GraphiQL's explorer stays empty
        hash_only(),
        {"query": QUERY, "variables": VARIABLES, "extensions": persisted(sha(QUERY))},  # registration neither
        [{"query": LISTED, "variables": VARIABLES}],  # a batch is not one operation
    ],
)
async def test_safelist_refuses_anything_else_before_it_runs(
    safelist_url: str, sandbox: SandboxGateway, body: Any
) -> None:
    refused = await post(safelist_url, body)
    assert (refused.status_code, code(refused)) == (403, "PERSISTED_QUERY_NOT_ALLOWED")
    assert sandbox.calls == []


async def test_safelist_refuses_other_content_types_and_garbage(safelist_url: str) -> None:
    # Not GraphQL requests at all: refused as such, before anything is parsed as a document.
    text = await post(safelist_url, LISTED.encode(), **{"Content-Type": "application/graphql"})
    assert (text.status_code, code(text)) == (415, "BAD_REQUEST")
    garbage = await post(safelist_url, b"{", **{"Content-Type": "application/json"})
    assert (garbage.status_code, code(garbage)) == (400, "BAD_REQUEST")
    unlisted_get = await get(safelist_url, {"query": QUERY, "variables": VARIABLES})
    assert (unlisted_get.status_code, code(unlisted_get)) == (403, "PERSISTED_QUERY_NOT_ALLOWED")


async def test_safelist_checks_text_sent_with_an_id(safelist_url: str) -> None:
    mismatch = {"query": QUERY, "variables": VARIABLES, "extensions": persisted(CUSTOM_ID)}
    refused = await post(safelist_url, mismatch)
    assert (refused.status_code, code(refused)) == (400, "BAD_USER_INPUT")
    matching = {"query": LISTED, "variables": VARIABLES, "extensions": persisted(CUSTOM_ID)}
    assert (await post(safelist_url, matching)).json()["data"]["miniAppVersion"]["status"] == "RELEASE"


async def test_safelist_lets_requests_without_an_operation_reach_strawberry(safelist_url: str) -> None:
    nothing = await get(safelist_url, {}, Accept="application/json")
    assert nothing.status_code == 400  # "No GraphQL query found in the request"
    async with httpx.AsyncClient(base_url=safelist_url) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200  # the playground page is served; what it sends is checked like the rest


async def test_apq_knows_the_manifests_ids_from_the_start(start_app: Callable[..., str]) -> None:
    url = start_app(operations=MANIFEST)
    answered = await post(url, hash_only(LISTED))
    assert answered.json()["data"]["miniAppVersion"]["status"] == "RELEASE"
    assert (await post(url, {"variables": VARIABLES, "extensions": persisted(CUSTOM_ID)})).json()["data"]
    assert (await post(url, {"query": QUERY, "variables": VARIABLES})).json()["data"]  # other text still runs


# --- the store of registered documents ------------------------------------------------------------------------


def numbered(i: int) -> str:
    return f"query N{i} {{ __typename }}"


async def test_the_memory_store_keeps_at_most_its_bound(start_app: Callable[..., str]) -> None:
    url = start_app(apq_max_documents=10)
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        for i in range(50):
            both = {"query": numbered(i), "extensions": persisted(sha(numbered(i)))}
            assert (await http.post("/graphql", json=both)).json()["data"] == {"__typename": "Query"}
        known = [(await http.post("/graphql", json=hash_only(numbered(i), {}))).json() != NOT_FOUND for i in range(50)]
    assert known == [False] * 40 + [True] * 10  # the least recently used went; the newest ten stayed


async def test_documents_live_in_redis_shared_by_instances(
    start_app: Callable[..., str], redis_server: RedisServer
) -> None:
    one, two = start_app(cache_url=redis_server.url), start_app(cache_url=redis_server.url, apq_ttl_s=120)
    await register(one)
    assert (await post(two, hash_only())).json()["data"]["miniAppVersion"]["status"] == "RELEASE"
    key = f"alipay-miniapp-graph:v1:apq:{sha(QUERY)}"
    ttl = int((redis_server.command("TTL", key) or ":-2").lstrip(":"))
    assert 86000 < ttl <= 86400  # GRAPH_APQ_TTL_S (the default, a day) of the instance that registered it
    await register(two, numbered(1), {})
    ttl = int((redis_server.command("TTL", f"alipay-miniapp-graph:v1:apq:{sha(numbered(1))}") or ":-2").lstrip(":"))
    assert 0 < ttl <= 120
    # A document read from Redis is kept in process (it cannot change under its hash): no round trip next time.
    redis_server.stop()
    assert (await post(two, hash_only())).json()["data"]["miniAppVersion"]["status"] == "RELEASE"
    assert (await post(one, hash_only())).json() == NOT_FOUND  # `one` never read it: Redis is down, so a miss


async def test_documents_read_from_redis_are_kept_in_process_with_a_bound(
    start_app: Callable[..., str], redis_server: RedisServer
) -> None:
    # Documents of ~30 KB (a comment), over the default GRAPH_APQ_MAX_DOCUMENT_BYTES: the in-process copy's bytes bound
    # is reached after a few.
    url = start_app(cache_url=redis_server.url, cache_ttl_s=0, apq_max_document_bytes=64 * 1024)
    padding = "#" + "x" * 30000

    def padded(i: int) -> str:
        return numbered(i) + padding

    count = RECENT_BYTES // (2 * len(padded(0))) + 2
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        for i in range(count):
            both = {"query": padded(i), "extensions": persisted(sha(padded(i)))}
            assert (await http.post("/graphql", json=both)).json()["data"] == {"__typename": "Query"}
        for i in range(count):
            answer = await http.post("/graphql", json=hash_only(padded(i), {}))
            assert answer.json()["data"] == {"__typename": "Query"}
    redis_server.stop()
    assert (await post(url, hash_only(padded(0), {}))).json() == NOT_FOUND  # the oldest copy went
    assert (await post(url, hash_only(padded(count - 1), {}))).json()["data"] == {"__typename": "Query"}


async def test_a_redis_outage_is_a_miss_not_a_failure(start_app: Callable[..., str], redis_server: RedisServer) -> None:
    url = start_app(cache_url=redis_server.url)
    await register(url)
    redis_server.stop()
    assert (await post(url, hash_only())).json() == NOT_FOUND  # Apollo Client then sends the text
    assert (await register(url)).json()["data"]["miniAppVersion"]["status"] == "RELEASE"


# --- what operators see ----------------------------------------------------------------------------------------


async def test_log_lines_and_metrics_tell_what_became_of_persisted_queries(
    graph_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="graph.http")
    both = {"query": QUERY, "variables": VARIABLES, "extensions": persisted(sha(QUERY))}
    forged = {"query": "{ __typename }", "extensions": persisted(sha(QUERY))}
    plain = {"query": QUERY, "variables": VARIABLES}
    for request_id, body in [("a", hash_only()), ("b", both), ("c", hash_only()), ("d", forged), ("e", plain)]:
        await post(graph_url, body, **{"X-Request-Id": request_id})
    lines: dict[str, logging.LogRecord] = {}
    for _ in range(100):  # a request's line is written just after its response has gone
        lines = {getattr(r, "request_id", ""): r for r in caplog.records if r.getMessage() == "request"}
        if "e" in lines:
            break
        await asyncio.sleep(0.05)
    seen = {request_id: getattr(lines[request_id], "persisted_query", None) for request_id in "abcde"}
    assert seen == {"a": "miss", "b": "registered", "c": "hit", "d": "refused", "e": None}
    samples, _, _ = await scrape(graph_url)
    documents = {"cache": "documents", "backend": "memory"}
    assert value(samples, "graph_cache_lookups_total", **documents, result="miss") == 1
    assert value(samples, "graph_cache_lookups_total", **documents, result="hit") == 1
    assert value(samples, "graph_cache_entries", cache="documents") == 1


async def test_a_document_in_redis_is_checked_against_its_hash(
    start_app: Callable[..., str], redis_server: RedisServer, sandbox: SandboxGateway
) -> None:
    # Anyone able to write to the shared Redis could map a known hash to another document: the text must hash to it.
    url = start_app(cache_url=redis_server.url)
    forged = "{__schema{types{name}}}"  # no spaces: redis_server.command speaks the inline protocol
    assert redis_server.command("SET", f"alipay-miniapp-graph:v1:apq:{sha(QUERY)}", forged) == "+OK"
    assert (await post(url, hash_only())).json() == NOT_FOUND  # Apollo Client then sends the real text
    assert sandbox.calls == []
    assert (await register(url)).json()["data"]["miniAppVersion"]["status"] == "RELEASE"
    assert (await post(url, hash_only())).json()["data"]["miniAppVersion"]["status"] == "RELEASE"
