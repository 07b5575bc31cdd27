"""deploy/grafana/alipay-graph.json, read against a running service: every metric a PromQL expression of the dashboard
names (panels, rows' panels, template variables) is one the service exposes on ``/metrics``, after real requests
made every labelled series appear; ``rate()`` is taken of counters and histograms only.

Metric names are read out of PromQL by taking away what is not one: string literals, label matchers ``{...}``,
range and subquery selectors ``[...]``, the label lists of ``by``/``without``/``on``/``ignoring``/``group_left``/
``group_right``, Grafana's ``$variables``, numbers and durations; what is left and is not a function (followed by
``(``), an aggregation, a keyword or an operator is a metric. A histogram is used through its ``_bucket``, ``_sum``
and ``_count`` samples and a counter through ``_total``: those are the sample names ``/metrics`` writes, so a name
must be one of them (or a family's own name).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from graph.sandbox import Fault, SandboxGateway

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "alipay-graph.json"
KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or"})
KEYWORDS |= {"unless", "atan2", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MODIFIER = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metrics an expression selects (see the module's docstring for how)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers (strings inside are already gone)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # [5m], [$__rate_interval], subqueries' [1h:5m]
    text = _MODIFIER.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana's variables
    text = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?\b", " ", text)  # numbers, durations
    names = set()
    for name, call in _IDENTIFIER.findall(text):
        if not call and name not in KEYWORDS:
            names.add(name)
    return names


def rated(expr: str) -> set[str]:
    """The metrics taken ``rate()``/``irate()``/``increase()`` of (their argument is a range vector selector)."""
    text = _STRING.sub('""', expr)
    return set(re.findall(r"\b(?:rate|irate|increase)\s*\(\s*([A-Za-z_:][\w:]*)", text))


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every query of the dashboard."""
    found = []
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            # label_values(selector, label): the label is not a metric
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            found.append((f"variable {variable['name']}", match.group(1) if match else query))
    return found


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def test_the_parser_reads_names_out_of_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (method, le) (rate(graph_gateway_call_duration_seconds_bucket{job=~"$job", '
        'outcome!="error"}[$__rate_interval]))) / on(instance) group_left(version) graph_build_info offset 5m'
    )
    assert metric_names(expr) == {"graph_gateway_call_duration_seconds_bucket", "graph_build_info"}
    assert metric_names('sum(rate(x_total{a="sum(y)"}[5m])) by (z) > bool 0.5') == {"x_total"}
    assert metric_names('count by (version) (up{job="a,b"}) and ignoring(job) z:recorded:rate5m') == {
        "up",
        "z:recorded:rate5m",
    }
    assert metric_names("max_over_time(a[1h:5m]) * 1e3 + ${offset_var}") == {"a"}
    assert rated('sum(rate( a_total{x="rate(b)"}[5m])) + increase(c_count[1h]) + d') == {"a_total", "c_count"}


async def test_every_metric_of_the_dashboard_is_exposed(
    dashboard: dict[str, Any], start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(metrics_operations=frozenset({"Status"}))
    query = "query Status($v: String!) { miniAppVersion(appVersion: $v) { status } }"
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        # Every labelled family gets a series: an answer, the same again (response-cache hit), a business error,
        # a retried busy answer, a refused document, an unknown route.
        for version in ("0.0.1", "0.0.1", "9.9.9"):
            await http.post("/graphql", json={"query": query, "variables": {"v": version}})
        sandbox.fail_next(Fault.BUSY, times=1)
        await http.post("/graphql", json={"query": query, "variables": {"v": "0.0.2"}})
        await http.post("/graphql", json={"query": "{ miniAppVersion( }"})
        await http.get("/nowhere")
        exposition = (await http.get("/metrics")).text
    kinds: dict[str, str] = {}
    for family in text_string_to_metric_families(exposition):
        kinds[family.name] = family.type
        for sample in family.samples:
            kinds.setdefault(sample.name, family.type)
    used = {name: where for where, expr in expressions(dashboard) for name in metric_names(expr)}
    assert len(used) >= 15  # the parser found the dashboard's metrics, not nothing
    missing = sorted(set(used) - set(kinds))
    assert missing == [], "names the dashboard uses that /metrics does not expose:\n" + "\n".join(
        f"  {name} (panel {used[name]!r})" for name in missing
    )
    # rate() of a gauge is a mistake Prometheus accepts silently.
    for where, expr in expressions(dashboard):
        for name in rated(expr):
            assert kinds[name] in {"counter", "histogram"}, f"{where}: rate() of {name}, a {kinds[name]}"


def test_the_dashboard_is_importable(dashboard: dict[str, Any]) -> None:
    # What Grafana's import needs, and every query on the chosen data source and the job/instance selection.
    assert dashboard["uid"]
    assert dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = [panel for panel in _panels(dashboard["panels"]) if panel["type"] != "row"]
    assert len({panel["id"] for panel in _panels(dashboard["panels"])}) == len(list(_panels(dashboard["panels"])))
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["description"], panel["title"]
        for target in panel["targets"]:
            assert 'job=~"$job", instance=~"$instance"' in target["expr"], panel["title"]
    # Panels do not overlap on the grid.
    taken: set[tuple[int, int]] = set()
    for panel in _panels(dashboard["panels"]):
        grid = panel["gridPos"]
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        assert grid["x"] + grid["w"] <= 24
        taken |= cells
