"""The docs, read against the code: every ``GRAPH_*`` / ``ALIPAY_*`` variable the code reads has exactly one row in
docs/configuration.md's table, with its default as the code has it, and no row names a variable the code does not
read; every link between the README, CONTRIBUTING, CHANGELOG and docs/ leads to a file and heading that exist.

The names are found in the code three ways (so a setting added anywhere, by anyone, is caught): every call that
reads the environment (``env.get("NAME"...)``, ``_number(env, "NAME", ...)``, ``secret(env, "NAME")`` and its
``NAME_FILE``, ``os.environ``), every name spelled in graph/config.py and graph/keyfiles.py, and what
``Settings.from_environ`` asks a recording environment for. A default is the value the setting's field takes in
``Settings.from_environ`` when the variable is unset; a variable with no field of its own has the default its read
call spells, or none.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from graph.config import Settings
from graph.sandbox import DemoCredentials
from tests.test_deploy import Recording

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
NAME = re.compile(r"(?:GRAPH|ALIPAY)_[A-Z0-9_]*[A-Z0-9]")
ENVIRONMENTS = {"env", "environ", "environment"}  # what the code calls the mapping it reads settings from
SECRET_READERS = {"secret", "optional_secret"}  # read NAME or the file NAME_FILE names
# The pages whose links are checked: the README, the two project files beside it and every page of docs/.
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for package in ("graph", "resolvers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def _name_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _constant_name(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
        return node.value
    return None


def _is_environment(node: ast.expr) -> bool:
    return _name_of(node) in ENVIRONMENTS


UNKNOWN = "(a default this test cannot read from the code)"


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


class Read:
    """One place the code reads a variable: its name, and the expression after it (a default, where it has one)."""

    def __init__(self, name: str, default: ast.expr | None, call: ast.expr, module: ast.Module) -> None:
        self.name, self.default, self.call = name, default, call
        self._parents = {child: parent for parent in ast.walk(module) for child in ast.iter_child_nodes(parent)}
        # The module's own constants, so ``_number(env, "X", DEFAULT_X, ...)`` reads DEFAULT_X's value.
        self._constants = {
            target.id: statement.value
            for statement in module.body
            if isinstance(statement, ast.Assign)
            for target in statement.targets
            if isinstance(target, ast.Name)
        }

    def literal_default(self) -> object:
        """What the read call itself falls back to: ``env.get("X", "RSA2")``, ``_number(env, "X", 32 << 20, ...)``,
        or ``env.get("X", "").strip() or "memory://"``; None when it spells none, UNKNOWN when it spells one this
        cannot work out (a call, an imported name)."""
        value = _evaluate(self.default, self._constants) if self.default is not None else None
        if value in (None, ""):
            node: ast.AST = self.call
            while node in self._parents and not isinstance(node, ast.stmt):  # up through .strip() to ``or "x"``
                node = self._parents[node]
                if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
                    last = node.values[-1]
                    fallback = _evaluate(last, self._constants)
                    if fallback is not None:
                        return fallback
                    # ``or SOME_DEFAULT`` names a default this cannot read; ``or env.get(...)`` is no default
                    return UNKNOWN if isinstance(last, ast.Name | ast.Attribute) else None
        if value is None and self.default is not None and not _is_none(self.default):
            return UNKNOWN
        return None if value == "" else value


def reads(modules: Iterable[ast.Module] | None = None) -> list[Read]:
    """Every call in graph/ and resolvers/ (or ``modules``) that reads a variable from the environment, by a constant
    name."""
    found = []
    for module in modules if modules is not None else (module for _, module in _sources()):
        for node in ast.walk(module):
            if isinstance(node, ast.Subscript) and _is_environment(node.value):  # env["NAME"]: no default
                if name := _constant_name(node.slice):
                    found.append(Read(name, None, node, module))
                continue
            if not isinstance(node, ast.Call):
                continue
            function, args = node.func, node.args
            if (
                isinstance(function, ast.Attribute)
                and function.attr in {"get", "pop"}
                and _is_environment(function.value)
            ):
                name = _constant_name(args[0]) if args else None
                if name:
                    found.append(Read(name, args[1] if len(args) > 1 else None, node, module))
                continue
            if _name_of(function) == "getenv" and args and (name := _constant_name(args[0])):
                found.append(Read(name, args[1] if len(args) > 1 else None, node, module))
                continue
            for position, arg in enumerate(args[:-1]):  # helper(env, "NAME", default, ...)
                if _is_environment(arg) and (name := _constant_name(args[position + 1])):
                    default = args[position + 2] if len(args) > position + 2 else None
                    found.append(Read(name, default, node, module))
                    if _name_of(function) in SECRET_READERS:
                        found.append(Read(f"{name}_FILE", None, node, module))
    return found


_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.LShift: operator.lshift,
    ast.Mult: operator.mul,
    ast.Pow: operator.pow,
    ast.Add: operator.add,
    ast.Sub: operator.sub,
}


def _evaluate(node: ast.expr, constants: dict[str, ast.expr], depth: int = 0) -> object:
    """A default as written: a constant, the module's named constant, or constants joined by arithmetic
    (``32 << 20``, ``10**8``); None for anything else."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants and depth < 5:
        return _evaluate(constants[node.id], constants, depth + 1)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left, constants, depth), _evaluate(node.right, constants, depth)
        return None if left is None or right is None else _OPERATORS[type(node.op)](left, right)
    return None


def names_read(demo_credentials: DemoCredentials, tmp_path: Path) -> set[str]:
    names = {read.name for read in reads()}
    text = "".join((ROOT / "graph" / name).read_text(encoding="utf-8") for name in ("config.py", "keyfiles.py"))
    names |= set(NAME.findall(text))
    recording = Recording(_environment(demo_credentials, tmp_path))
    Settings.from_environ(recording)
    return names | recording.asked


def _environment(demo_credentials: DemoCredentials, tmp_path: Path) -> dict[str, str]:
    private, public = tmp_path / "app.pem", tmp_path / "alipay.pem"
    private.write_text(demo_credentials.app_private_key_pem, encoding="utf-8")
    public.write_text(demo_credentials.alipay_public_key_pem, encoding="utf-8")
    return {
        "ALIPAY_APP_ID": "2021000000000000",
        "ALIPAY_APP_PRIVATE_KEY_FILE": str(private),
        "ALIPAY_PUBLIC_KEY_FILE": str(public),
    }


def fields_by_name() -> dict[str, str]:
    """Which ``Settings`` field each variable sets, from ``from_environ``'s ``cls(field=...)``: the names spelled in
    the field's expression; for ``field=local`` those of the local's assignment; for ``field=_helper(env)`` those
    in the helper (graph/config.py's own functions)."""
    module = ast.parse((ROOT / "graph" / "config.py").read_text(encoding="utf-8"))
    helpers = {node.name: node for node in module.body if isinstance(node, ast.FunctionDef)}
    [method] = [
        node
        for node in ast.walk(module)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "from_environ"
    ]
    local_values = {
        target.id: node.value
        for node in ast.walk(method)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    [build] = [
        node
        for node in ast.walk(method)
        if isinstance(node, ast.Call) and _name_of(node.func) == "cls"  # the one cls(...) it returns
    ]

    def spelled(node: ast.AST) -> set[str]:
        return {name for child in ast.walk(node) if isinstance(child, ast.expr) and (name := _constant_name(child))}

    found: dict[str, str] = {}
    for keyword in build.keywords:
        if keyword.arg is None:
            continue  # **more: no field to name; those variables fall back to their read call's default
        names = spelled(keyword.value)
        if not names and isinstance(keyword.value, ast.Name) and keyword.value.id in local_values:
            names = spelled(local_values[keyword.value.id])
        if not names and isinstance(keyword.value, ast.Call) and _name_of(keyword.value.func) in helpers:
            names = spelled(helpers[str(_name_of(keyword.value.func))])
        for name in names:
            found.setdefault(name, keyword.arg)
    return found


def shown(value: object) -> str | None:
    """A default as the table shows it (``60`` for 60.0, ``false``); None for no default (unset, empty, a key)."""
    if value is None or value == "" or (isinstance(value, frozenset | set | tuple | list) and not value):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return None  # credentials, a manifest: objects made from other variables, never a default of their own


def defaults(demo_credentials: DemoCredentials, tmp_path: Path, names: set[str]) -> dict[str, str | None]:
    settings = Settings.from_environ(_environment(demo_credentials, tmp_path))
    fields = fields_by_name()
    spelled: dict[str, list[object]] = {}
    for read in reads():
        spelled.setdefault(read.name, []).append(read.literal_default())
    literal: dict[str, object] = {}
    for name, values in spelled.items():  # a value any read spells, else "cannot tell", else none
        known = [value for value in values if value not in (None, UNKNOWN)]
        literal[name] = known[0] if known else (UNKNOWN if UNKNOWN in values else None)
    found = {}
    for name in names:
        field = fields.get(name) or fields.get(name.removesuffix("_FILE"))
        value = getattr(settings, field) if field else None
        found[name] = shown(value) if field and shown(value) is not None else shown(literal.get(name))
    return found


def table_rows(text: str) -> list[tuple[list[str], str]]:
    """(variables named in the first cell, the last cell) of every table row that names one."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        names = [name for name in re.findall(r"`([^`]+)`", cells[0]) if NAME.fullmatch(name)]
        if names:
            rows.append((names, cells[-1]))
    return rows


def test_every_variable_the_code_reads_is_documented_once_with_its_default(
    demo_credentials: DemoCredentials, tmp_path: Path
) -> None:
    names = names_read(demo_credentials, tmp_path)
    assert {"ALIPAY_APP_PRIVATE_KEY_FILE", "GRAPH_CACHE_URL", "GRAPH_API_KEYS_FILE", "GRAPH_LOG_FORMAT"} <= names
    rows = table_rows(CONFIGURATION.read_text(encoding="utf-8"))
    documented = [name for row_names, _ in rows for name in row_names]
    missing = sorted(names - set(documented))
    assert missing == [], f"read by the code, no row in docs/configuration.md: {missing}"
    twice = sorted({name for name in documented if documented.count(name) > 1})
    assert twice == [], f"more than one row in docs/configuration.md: {twice}"
    stale = sorted(set(documented) - names)
    assert stale == [], f"documented in docs/configuration.md, never read by the code: {stale}"
    wrong = default_problems(rows, defaults(demo_credentials, tmp_path, names))
    assert wrong == [], "\n".join(wrong)


def default_problems(rows: list[tuple[list[str], str]], expected: dict[str, str | None]) -> list[str]:
    """A row's default cell against the code's: its first code span is the value, or it says none/required."""
    wrong = []
    for row_names, cell in rows:
        spans = re.findall(r"`([^`]+)`", cell)
        for name in row_names:
            want = expected[name]
            if want == UNKNOWN:
                wrong.append(
                    f"{name}: its default cannot be read from the code: give it a Settings field, or a literal"
                )
            elif not (cell.lower().startswith(("none", "required")) if want is None else spans[:1] == [want]):
                wrong.append(f"{name}: the code's default is {want or 'none'}, the row says {cell!r}")
    return wrong


def test_a_wrong_default_is_reported() -> None:
    rows = table_rows(
        "| `GRAPH_A_S` | a | `10` |\n| `GRAPH_B` | b | `x` |\n"
        "| `GRAPH_C` | c | none |\n| `GRAPH_D` | d | no default |\n"
    )
    expected = {"GRAPH_A_S": "5", "GRAPH_B": None, "GRAPH_C": UNKNOWN, "GRAPH_D": None}
    assert default_problems(rows, expected) == [
        "GRAPH_A_S: the code's default is 5, the row says '`10`'",
        "GRAPH_B: the code's default is none, the row says '`x`'",
        "GRAPH_C: its default cannot be read from the code: give it a Settings field, or a literal",
        "GRAPH_D: the code's default is none, the row says 'no default'",
    ]
    assert default_problems(rows[:1], {"GRAPH_A_S": "10"}) == []


def test_no_other_page_holds_a_settings_row() -> None:
    # One place for each setting: a row left in the README (or anywhere else) after a merge would drift.
    elsewhere = {
        page.relative_to(ROOT).as_posix(): [
            name for names, _ in table_rows(page.read_text(encoding="utf-8")) for name in names
        ]
        for page in PAGES
        if page != CONFIGURATION
    }
    assert {page: names for page, names in elsewhere.items() if names} == {}


def test_the_defaults_are_read_from_the_code() -> None:
    # The readers this test relies on find what they should, so a reshaped config.py fails here, not silently.
    by_name = {read.name: read for read in reads()}
    assert by_name["GRAPH_CACHE_MAX_BYTES"].literal_default() == 32 << 20
    assert by_name["GRAPH_CACHE_URL"].literal_default() == "memory://"
    assert by_name["ALIPAY_SIGN_TYPE"].literal_default() == "RSA2"
    assert by_name["ALIPAY_APP_ID"].literal_default() is None
    assert "ALIPAY_ENCRYPT_KEY_FILE" in by_name  # from optional_secret(env, "ALIPAY_ENCRYPT_KEY")
    sample = ast.parse(
        "import os\n"
        "DEFAULT_STALE_S = 30 * 2\n"
        "def settings(env):\n"
        "    stale = _number(env, 'GRAPH_X_S', DEFAULT_STALE_S, float, minimum=0)\n"
        "    y, z = os.environ['GRAPH_Y'], os.getenv('GRAPH_Z', 'zz')\n"
        "    w = env.get('GRAPH_W', '').strip() or 'w'\n"
        "    u = env.get('GRAPH_U', '') or env.get('GRAPH_U_OLD', '') or os.sep\n"
        "    key = optional_secret(env, 'GRAPH_K')\n"
        "    other = env.get(name, '')\n"
        "    v = _number(env, 'GRAPH_V', limit() * 2, int)\n"
    )
    found = {read.name: read.literal_default() for read in reads([sample])}
    assert found == {
        "GRAPH_X_S": 60,
        "GRAPH_Y": None,
        "GRAPH_Z": "zz",
        "GRAPH_W": "w",
        "GRAPH_K": None,
        "GRAPH_K_FILE": None,
        "GRAPH_V": UNKNOWN,
        "GRAPH_U": UNKNOWN,
        "GRAPH_U_OLD": UNKNOWN,  # reported as such, never taken for "none"
    }
    fields = fields_by_name()
    assert fields["GRAPH_CACHE_TTL_S"] == "cache_ttl_s"
    assert fields["GRAPH_LOG_FORMAT"] == "log_format"  # through the local it is parsed into
    assert fields["GRAPH_API_KEYS_FILE"] == "api_keys"  # through config.py's helper
    assert (shown(60.0), shown(0.5), shown(False), shown(frozenset()), shown("v2")) == (
        "60",
        "0.5",
        "false",
        None,
        "v2",
    )


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and GitLab make it: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _outside_code(text: str) -> str:
    return re.sub(r"(?ms)^```.*?^```", "", text)


def anchors(page: Path) -> set[str]:
    return {
        slug(line.lstrip("#"))
        for line in _outside_code(page.read_text(encoding="utf-8")).splitlines()
        if line.startswith("#")
    }


def links(page: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", _outside_code(page.read_text(encoding="utf-8")))
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", target)]


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no such heading in {destination.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_internal_links_resolve(page: Path) -> None:
    assert page.exists()
    assert broken_links(page) == []


def test_a_broken_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Where it is\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#where-it-is) [ok](#page) [web](https://example.com/x.md) `[code](nowhere.md)`\n"
        "[gone](missing.md) [no heading](other.md#nowhere) [here](#nothing)\n\n```md\n[in a block](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nowhere: no such heading in other.md",
        "#nothing: no such heading in page.md",
    ]


def test_the_slugs_are_the_forges() -> None:
    assert slug("Certificate mode (公钥证书模式)") == "certificate-mode-公钥证书模式"
    assert slug("Persisted queries (APQ and safelist)") == "persisted-queries-apq-and-safelist"
    assert slug("Tracing (OpenTelemetry)") == "tracing-opentelemetry"
    assert slug("`GRAPH_LOG_FORMAT` and the terminal") == "graph_log_format-and-the-terminal"


def test_one_diagram_of_a_requests_path() -> None:
    # Mermaid (which the forges render) ends a statement at ";": one inside a note's text broke the whole diagram.
    text = (DOCS / "request-path.md").read_text(encoding="utf-8")
    [diagram] = re.findall(r"(?ms)^```mermaid\n(.*?)^```", text)
    assert diagram.startswith("sequenceDiagram")
    assert ";" not in diagram
    for stop in ("Response cache", "Single-flight", "Gateway-answer cache", "Alipay"):
        assert f"as {stop}" in diagram


def test_the_readme_keeps_two_set_up_commands() -> None:
    # One installs and serves the demo, one installs and runs the whole suite: a newcomer's first two steps.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"(?ms)^## Quick start$.*?^```sh\n(.*?)^```", readme)
    commands = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 2
    assert commands[0].startswith("pip install -e .")
    assert commands[0].endswith("python -m graph serve --demo")
    assert commands[1] == ".ci/run"
    assert (ROOT / ".ci" / "run").exists()
