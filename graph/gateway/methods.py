"""The Alipay read methods this service calls, by their v2 names; each one's v3 path follows from its name.

v2 sends the name as ``method`` and the arguments as ``biz_content``; v3 GETs ``/v3/<name with / for .>`` with
the arguments in the query string. Nothing else differs between methods on the wire, so one signed call path
serves them all.
"""

from __future__ import annotations

VERSION_DETAIL = "alipay.open.mini.version.detail.query"  # 小程序版本详情查询
VERSION_LIST = "alipay.open.mini.version.list.query"  # 小程序版本列表查询
BASE_INFO = "alipay.open.mini.baseinfo.query"  # 查询小程序基础信息
EXPERIENCE = "alipay.open.mini.experience.query"  # 小程序体验版状态查询
READ_METHODS = (VERSION_DETAIL, VERSION_LIST, BASE_INFO, EXPERIENCE)


def v3_path(method: str) -> str:
    """``alipay.open.mini.version.list.query`` → ``/v3/alipay/open/mini/version/list/query``."""
    return "/v3/" + method.replace(".", "/")


def response_node(method: str) -> str:
    """The v2 body's member that holds ``method``'s answer."""
    return method.replace(".", "_") + "_response"
