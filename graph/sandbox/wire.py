"""How Alipay's v2 gateway writes an answer, byte for byte.

The body is assembled as text, not ``json.dumps`` of a wrapper: the signature covers the node's text as
it stands in the body, so the node is serialised once, signed, and pasted in unchanged. When the request
was encrypted, the API's answer (success or business failure) goes back as a quoted base64 ciphertext,
and the signature covers that quoted string; in certificate mode the body also names Alipay's certificate
in ``alipay_cert_sn`` (not signed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from graph.gateway import aes
from graph.gateway.signing import SignType, sign

METHOD = "alipay.open.mini.version.detail.query"
METHOD_NODE = METHOD.replace(".", "_") + "_response"
ERROR_NODE = "error_response"

# The real gateway labels its JSON as HTML; clients must not rely on the content type.
CONTENT_TYPE = "text/html;charset=utf-8"

CODE_MSG: Mapping[str, str] = {
    "10000": "Success",
    "20000": "Service Currently Unavailable",
    "20001": "Insufficient Token Permissions",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
    "40005": "Call Limited",
}

# sub_msg texts: the API doc's for its business codes, the gateway's usual wording for the rest.
SUB_MSG: Mapping[str, str] = {
    "isp.unknow-error": "系统繁忙",
    "isv.missing-app-id": "缺少AppID参数",
    "isv.missing-method": "缺少方法名参数",
    "isv.missing-charset": "缺少字符集参数",
    "isv.missing-signature-type": "缺少签名类型参数",
    "isv.missing-signature": "缺少签名参数",
    "isv.missing-timestamp": "缺少时间戳参数",
    "isv.missing-version": "缺少版本参数",
    "isv.missing-nonce": "缺少nonce参数",
    "isv.invalid-app-id": "无效的AppID参数",
    "isv.invalid-format": "无效的数据格式",
    "isv.invalid-charset": "无效的字符集",
    "isv.invalid-version": "无效的版本号",
    "isv.invalid-signature-type": "无效的签名类型",
    "isv.invalid-timestamp": "非法的时间戳参数",
    "isv.invalid-signature": "验签出错,建议检查签名字符串或签名私钥与应用公钥是否匹配",
    "isv.invalid-method": "不存在的方法名",
    "isv.invalid-biz-content": "业务参数biz_content不是合法的JSON对象",
    "aop.invalid-app-auth-token": "无效的应用授权令牌",
    "isv.app-call-limited": "应用调用次数超限",
    "SYSTEM_ERROR": "系统繁忙",
    "APPLICATION_TYPE_NOT_MINIAPP": "应用类型不是小程序类型",
    "APP_VERSION_IS_BLANK": "版本号为空",
    "BUNDLE_ID_NOT_EXIST": "端参数不存在",
    "VERSION_IS_BLANK": "版本字段为空",
    "VERSION_NOT_EXIST": "版本不存在",
    "INVALID_PARAMS": "参数有误",
    "MINI_APP_PACKAGE_INFO_NOT_EXIST": "小程序包信息不存在",
    "APP_INFO_NOT_EXIST": "小程序信息不存在",
    "isv.decryption-error-not-valid-encrypt-type": "解密出错,不支持的加密算法",
    "isv.decryption-error-not-valid-encrypt-key": "解密出错, 未配置加密密钥或加密密钥格式错误",
    "isv.decryption-error-unknown": "解密出错,未知异常",
    # Certificate mode: named in the gateway's style; the public error list we had does not spell these out.
    "isv.missing-app-cert-sn": "缺少应用公钥证书序列号",
    "isv.missing-alipay-root-cert-sn": "缺少支付宝根证书序列号",
    "isv.invalid-app-cert-sn": "无效的应用公钥证书序列号",
    "isv.invalid-alipay-root-cert-sn": "无效的支付宝根证书序列号",
}
# Answers the API itself gives (as opposed to the gateway's refusals): these go back encrypted under AES.
API_CODES = frozenset({"10000", "40004"})


def error_node(code: str, sub_code: str, sub_msg: str | None = None) -> dict[str, Any]:
    return {"code": code, "msg": CODE_MSG[code], "sub_code": sub_code, "sub_msg": sub_msg or SUB_MSG[sub_code]}


def success_node(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"code": "10000", "msg": CODE_MSG["10000"], **record}


def node_text(node: Mapping[str, Any]) -> str:
    # Alipay's serialiser escapes every "/" and leaves non-ASCII raw: a client that re-serialises the node
    # before verifying (or decodes the body as anything but UTF-8) breaks on exactly these two things.
    # Outside strings JSON has no "/", so a global replace only touches string contents.
    return json.dumps(node, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")


def body_text(node_name: str, text: str, sign_value: str | None, cert_sn: str | None = None) -> str:
    if sign_value is None:
        return f'{{"{node_name}":{text}}}'
    cert = f',"alipay_cert_sn":"{cert_sn}"' if cert_sn else ""
    return f'{{"{node_name}":{text}{cert},"sign":"{sign_value}"}}'


@dataclass(frozen=True)
class Wire:
    """An HTTP answer as the gateway would put it on the wire, plus what the call log records of it."""

    body: bytes
    status: int = 200
    content_type: str = CONTENT_TYPE
    code: str | None = None
    sub_code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # v3: the signature headers


@dataclass(frozen=True)
class Seal:
    """How the gateway signs (and, when the request was encrypted, encrypts) its answers to one request."""

    key: rsa.RSAPrivateKey | None = field(repr=False)  # None: unsigned, as for an app the gateway does not know
    sign_type: SignType = SignType.RSA2
    encrypt_key: bytes | None = field(default=None, repr=False)  # the app's AES key when the request used it
    cert_sn: str | None = None  # certificate mode: alipay_cert_sn, the SN of the certificate of ``key``

    def text(self, node: Mapping[str, Any]) -> str:
        """The node's text as it stands in the body: the object, or the quoted ciphertext of it."""
        if self.encrypt_key is None or node.get("code") not in API_CODES:
            return node_text(node)
        # Base64 has no character JSON escapes, so the quoted ciphertext is a valid JSON string as it is.
        return '"' + aes.encrypt(node_text(node), self.encrypt_key) + '"'

    def sign(self, text: str) -> str | None:
        return None if self.key is None else sign(text.encode("utf-8"), self.key, self.sign_type)

    def unsigned(self) -> Seal:
        return replace(self, key=None)

    def wire(self, node_name: str, node: Mapping[str, Any]) -> Wire:
        text = self.text(node)
        body = body_text(node_name, text, self.sign(text), self.cert_sn)
        return Wire(body.encode("utf-8"), code=node["code"], sub_code=node.get("sub_code"))
