"""The four read APIs the sandbox serves, over one set of seeded versions, so that their answers agree.

``version.list.query`` lists the versions whose details exist (filtered by status, newest first, at most 20);
``experience.query`` knows the trial build of each of them (a development version's is packaged, a version under
review is packing, the others are none, unless a test seeds another); ``baseinfo.query`` takes no arguments.
Each API checks its own arguments as Alipay documents it and refuses with its documented sub_codes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from graph.gateway.methods import BASE_INFO, EXPERIENCE, VERSION_DETAIL, VERSION_LIST
from graph.sandbox.checks import Refusal, find_version, requested
from graph.sandbox.seed import DEFAULT_BUNDLE_ID, SEED_BASE_INFO

MAX_LISTED = 20  # the newest v3 model's "at most the 20 most recent versions"
# AppVersionInfo's fields, as the list writes them, from the detail record's names.
_INFO_FIELDS = (
    ("app_version", "app_version"),
    ("create_time", "gmt_create"),
    ("version_description", "version_desc"),
    ("version_status", "status"),
    ("base_audit", "base_audit"),
    ("promote_audit", "promote_audit"),
    ("can_release", "can_release"),
)
_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Data:
    """What one merchant (or the app itself) has upstream."""

    versions: Mapping[tuple[str, str], Mapping[str, Any]]
    bundle_ids: Collection[str]
    app_id: str = ""
    base_info: Mapping[str, Any] | None = None  # None: the seeded app's
    experiences: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)


def answer(method: str, args: Mapping[str, Any], data: Data) -> Mapping[str, Any]:
    """The API's fields for a success; a ``Refusal`` (40004 and the API's sub_code) otherwise."""
    if method == VERSION_LIST:
        return version_list(args, data)
    if method == BASE_INFO:
        return SEED_BASE_INFO if data.base_info is None else data.base_info
    if method == EXPERIENCE:
        return experience(args, data)
    if method == VERSION_DETAIL:
        return find_version(data.versions, data.bundle_ids, *requested(args))
    raise Refusal("40002", "isv.invalid-method")


def version_list(args: Mapping[str, Any], data: Data) -> dict[str, Any]:
    _, bundle_id = requested(args)
    raw = args.get("version_status")
    # "不填默认不返回": without statuses nothing is listed. An unknown client has no versions.
    wanted = {part.strip() for part in raw.split(",")} if isinstance(raw, str) else set()
    records = [
        record
        for (app_version, client), record in data.versions.items()
        if client == bundle_id and record.get("status") in wanted
    ]
    records.sort(key=lambda record: version_order(str(record.get("app_version", ""))), reverse=True)
    infos = [_info(record, client=bundle_id or DEFAULT_BUNDLE_ID) for record in records[:MAX_LISTED]]
    node: dict[str, Any] = {"app_version_infos": infos}
    if bundle_id == DEFAULT_BUNDLE_ID:  # the deprecated plain list: Alipay's client only
        node["app_versions"] = [info["app_version"] for info in infos]
    return node


def _info(record: Mapping[str, Any], *, client: str) -> dict[str, Any]:
    info = {"app_version": record.get("app_version"), "bundle_id": client}
    info |= {name: record[source] for name, source in _INFO_FIELDS[1:] if source in record}
    return info


def version_order(app_version: str) -> tuple[tuple[int, ...], int, str]:
    """Newest first when sorted in reverse: 1.1.0 > 1.1.0-beta > 1.0.0 > 0.10.0 > 0.2.0."""
    main, dash, pre = app_version.partition("-")
    return tuple(int(part) if _NUMBER.fullmatch(part) else 0 for part in main.split(".")), 0 if dash else 1, pre


def experience(args: Mapping[str, Any], data: Data) -> Mapping[str, Any]:
    app_version, bundle_id = requested(args)
    if app_version is None:
        raise Refusal("40004", "APP_VERSION_IS_BLANK")
    if bundle_id is None or bundle_id not in data.bundle_ids:
        raise Refusal("40004", "INVALID_PARAMS")
    record = data.versions.get((app_version, bundle_id))
    if record is None:
        raise Refusal("40004", "MINI_APP_PACKAGE_INFO_NOT_EXIST")
    seeded = data.experiences.get((app_version, bundle_id))
    if seeded is not None:
        return seeded
    if record.get("status") == "INIT":
        code = hashlib.sha256(f"{data.app_id}/{app_version}/{bundle_id}".encode()).hexdigest()[:12]
        return {
            "exp_qr_code_url": f"https://mobilecodec.alipay.com/show.htm?code=s4x{code}",
            "exp_schema_url": f"alipays://platformapi/startapp?appId={data.app_id}&nbsv={app_version}&nbsource=debug",
            "status": "expVersionPackged",  # sic: Alipay's spelling
        }
    if record.get("status") == "AUDITING":
        return {"status": "expVersionPackaging"}
    return {"status": "notExpVersion"}
