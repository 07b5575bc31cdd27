"""graph.execution.manifest and printer: reading Apollo's manifest format, writing it for a folder of operations.

That the written ids and bodies equal Apollo's own generator's is proven in tests/test_persisted_apollo.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from graphql import parse

from graph.execution.manifest import (
    FORMAT,
    Manifest,
    ManifestError,
    Operation,
    build_manifest,
    operation_id,
    parse_manifest,
)
from graph.execution.printer import PrintError, add_typename, print_document

ROOT = Path(__file__).resolve().parent.parent
BODY = "query A {\n  a\n}"


def manifest_text(*operations: object, **top: object) -> str:
    return json.dumps({"format": FORMAT, "version": 1, "operations": list(operations), **top})


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_manifest_is_read_with_its_ids() -> None:
    manifest = parse_manifest(manifest_text({"id": "a1", "name": "A", "type": "query", "body": BODY}))
    assert manifest.operations == (Operation("a1", "A", "query", BODY),)
    assert manifest.by_id["a1"].body == BODY
    assert parse_manifest(manifest.dumps()) == manifest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON (line 1, column 2)"),
        ("[]", '"format": "apollo-persisted-query-manifest"'),
        (json.dumps({"format": FORMAT, "version": 2, "operations": []}), '"version": 1'),
        (json.dumps({"format": "relay", "version": 1, "operations": []}), "expected"),
        (manifest_text(operations={}), "'operations' must be a list"),
        (manifest_text("query A { a }"), "operations[0]: expected an object"),
        (manifest_text({"id": "", "name": "A", "type": "query", "body": BODY}), "operations[0]: 'id' must be"),
        (manifest_text({"id": "a", "name": "A", "type": "query"}), "'body' must be a non-empty string"),
        (manifest_text({"id": "a", "name": 1, "type": "query", "body": BODY}), "'name' must be"),
        (manifest_text({"id": "a", "name": "A", "type": "fragment", "body": BODY}), "'type' must be query"),
        (
            manifest_text(
                {"id": "a", "name": "A", "type": "query", "body": BODY},
                {"id": "a", "name": "B", "type": "query", "body": BODY},
            ),
            "operations[1]: id 'a' appears twice",
        ),
    ],
)
def test_a_wrong_manifest_says_where(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    assert message in str(info.value)


def test_an_empty_folder_makes_an_empty_manifest(tmp_path: Path) -> None:
    manifest = build_manifest(tmp_path)
    assert manifest == Manifest(())
    assert (
        manifest.dumps() == '{\n  "format": "apollo-persisted-query-manifest",\n  "version": 1,\n  "operations": []\n}'
    )


def test_each_operation_of_a_file_with_several_is_an_entry_with_the_fragments_it_uses(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "several.graphql": "query B { b { ...F } } query A { a } fragment F on T { f ...G }",
            "shared/g.gql": "fragment G on T { g }",
            "notes.txt": "query Ignored { x }",
        },
    )
    manifest = build_manifest(tmp_path)
    assert [op.name for op in manifest.operations] == ["A", "B"]
    a, b = manifest.operations
    assert a.body == "query A {\n  a\n}"  # alone: no fragment it does not use
    assert b.body == (
        "query B {\n  b {\n    ...F\n    __typename\n  }\n}\n\n"
        "fragment F on T {\n  f\n  ...G\n  __typename\n}\n\n"
        "fragment G on T {\n  g\n  __typename\n}"
    )
    assert b.id == operation_id(b.body)
    assert b.type == "query"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.graphql": "{ a }"}, "a.graphql: anonymous operations cannot be persisted"),
        ({"a.graphql": "query A { a }", "b.graphql": "query A { b }"}, "b.graphql: operation A is defined twice"),
        (
            {"a.graphql": "fragment F on T { a }", "b.graphql": "fragment F on T { b }"},
            "b.graphql: fragment F is defined twice",
        ),
        ({"a.graphql": "query A { ...Missing }"}, "a.graphql: fragment Missing is used but defined in no file"),
        ({"a.graphql": "type T { a: Int }"}, "operations and fragments, not a object type definition"),
        ({"a.graphql": "query A { a"}, "a.graphql: Syntax Error: Expected Name, found <EOF>. at line 1, column 12"),
        ({"a.graphql": "query A { a {} }"}, "a.graphql: Syntax Error: Expected Name, found '}'."),  # as graphql-js 16
        ({"a.graphql": "\udcff"}, "a.graphql: cannot read (UnicodeDecodeError)"),
    ],
)
def test_a_wrong_operation_file_says_which(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ManifestError) as info:
        build_manifest(tmp_path)
    assert message in str(info.value)


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not a folder"):
        build_manifest(tmp_path / "nowhere")


def test_fragment_variables_are_refused(tmp_path: Path) -> None:
    document = parse("fragment F($x: Int) on T { a }", experimental_fragment_arguments=True)
    with pytest.raises(PrintError, match="fragment variables"):
        print_document(document)


def test_the_printer_prints_operations_only() -> None:
    with pytest.raises(PrintError, match="not a object type definition"):
        print_document(parse("type T { a: Int }"))


def test_typename_goes_everywhere_but_the_root_and_where_already_asked() -> None:
    document = parse("query Q { a { __typename b } c { d } ... on Query { e } }")
    assert print_document(add_typename(document)) == (
        "query Q {\n  a {\n    __typename\n    b\n  }\n  c {\n    d\n    __typename\n  }\n"
        "  ... on Query {\n    e\n    __typename\n  }\n}"
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graph", "persisted-manifest", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_the_command_prints_or_writes_the_manifest(tmp_path: Path) -> None:
    write(tmp_path / "ops", {"a.graphql": "query A { a }"})
    printed = run_cli(str(tmp_path / "ops"))
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["operations"][0] == {
        "id": operation_id(BODY),
        "name": "A",
        "type": "query",
        "body": BODY,
    }
    written = run_cli(str(tmp_path / "ops"), "--output", str(tmp_path / "manifest.json"))
    assert written.returncode == 0
    assert written.stdout == ""
    assert "1 operations written to" in written.stderr
    assert (tmp_path / "manifest.json").read_text() + "\n" == printed.stdout


def test_the_command_fails_with_one_line(tmp_path: Path) -> None:
    write(tmp_path, {"a.graphql": "{ a }"})
    failed = run_cli(str(tmp_path))
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr == "alipay-graph: a.graphql: anonymous operations cannot be persisted; name the operation\n"
