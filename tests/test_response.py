"""graph.gateway.response and graph.gateway.errors: reading a gateway body without trusting it, and the error tree."""

from __future__ import annotations

import json

import pytest

from graph.gateway.errors import (
    BusinessError,
    GatewayError,
    GatewayProtocolError,
    GatewayResponseError,
    GatewayTransportError,
    GatewayUnavailable,
    SignatureError,
    response_error,
)
from graph.gateway.response import ERROR_NODE, GatewayAnswer, Member, find_answer, top_level_members

METHOD = "alipay.open.mini.version.detail.query"
NODE_NAME = "alipay_open_mini_version_detail_query_response"
SIGN = "ERITJKEIJKJHKKKKKKKHJEREEEEEEEEEEE=="

# A node as the gateway writes it: escaped slashes, raw Chinese, quotes and braces inside strings, nesting.
NODE = (
    '{"code":"10000","msg":"Success","app_version":"0.0.1","app_name":"支付宝\\/小程序",'
    '"app_desc":"say \\"hi\\" {not a brace} } ]","app_logo":"https:\\/\\/example.com\\/logo.png",'
    '"package_info_list":[{"package_name":"基础库","package_open_type":"APPLY","nested":{"deep":[[],{}]}}],'
    '"empty":{},"n":1.5e2,"t":true,"z":null,"u":"\\u4e2d\\ud83d\\ude00"}'
)
BODY = f'{{"{NODE_NAME}":{NODE},"sign":"{SIGN}"}}'


# ------------------------------------------------------------------------------------------ top_level_members


def test_members_keep_the_node_text_exactly() -> None:
    members = top_level_members(BODY)
    assert list(members) == [NODE_NAME, "sign"]
    node = members[NODE_NAME]
    assert node.raw == NODE
    assert "\\/" in node.raw  # not re-serialised: the escape the signature covers is still there
    assert "支付宝" in node.raw
    assert node.value == json.loads(NODE)
    assert node.value["app_name"] == "支付宝/小程序"
    assert node.value["app_desc"] == 'say "hi" {not a brace} } ]'
    assert members["sign"] == Member(raw=f'"{SIGN}"', value=SIGN)


def test_members_ignore_whitespace_between_tokens() -> None:
    body = f'\r\n {{ \n\t"{NODE_NAME}"  :\n  {NODE}\t ,\r\n  "sign" : "{SIGN}" \n}}\n\n'
    members = top_level_members(body)
    assert members[NODE_NAME].raw == NODE
    assert members["sign"].value == SIGN


def test_members_keep_nested_whitespace_inside_the_node() -> None:
    node = '{ "code" : "10000",\n  "list" : [ 1 , { "a" : "}" } ] }'
    assert top_level_members(f'{{"x_response": {node} }}')["x_response"].raw == node


def test_members_keep_scalars_and_encrypted_nodes_raw() -> None:
    body = '{"x_response":"QUVTIGNpcGhlcnRleHQ=","n":-1.0E+2,"t":false,"z":null,"a":[1,"]",{"b":"}"}]}'
    members = top_level_members(body)
    assert members["x_response"].raw == '"QUVTIGNpcGhlcnRleHQ="'  # an AES node is verified quotes included
    assert members["n"] == Member("-1.0E+2", -100.0)
    assert members["t"] == Member("false", False)
    assert members["z"] == Member("null", None)
    assert members["a"].raw == '[1,"]",{"b":"}"}]'


@pytest.mark.parametrize("body", ["{}", "  {  }  ", "\n{\r\n}\t"])
def test_an_empty_object_has_no_members(body: str) -> None:
    assert top_level_members(body) == {}


@pytest.mark.parametrize(
    "body",
    [
        # The forged-second-node attack: json.loads keeps the last node, which the signature does not cover.
        '{"x_response":{"code":"10000"},"sign":"..","x_response":{"code":"10000","evil":1}}',
        '{"x_response":{"code":"10000"},"x_response":{"code":"10000","evil":1},"sign":".."}',
        # The same name spelt with an escape is the same member once decoded.
        '{"x_response":{"code":"10000"},"sign":"..","x_respons\\u0065":{"evil":1}}',
        '{"x_response":{},"sign":"a","sign":"b"}',
    ],
)
def test_a_member_named_twice_is_refused(body: str) -> None:
    with pytest.raises(SignatureError, match="twice"):
        top_level_members(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "not a JSON object"),
        ("   \r\n", "not a JSON object"),
        ("[]", "not a JSON object"),
        ('[{"x_response":{}}]', "not a JSON object"),
        ('"{}"', "not a JSON object"),
        ("123", "not a JSON object"),
        ("null", "not a JSON object"),
        ("<html><body>502 Bad Gateway</body></html>", "not a JSON object"),
        ("{", "not valid JSON"),
        ('{"x_response"', "not valid JSON"),
        ('{"x_response":', "not valid JSON"),
        ('{"x_response":{"code":"10000"}', "not valid JSON"),
        ('{"x_response":{"code":"10000"},', "not valid JSON"),
        ('{"x_response":{"code":"100', "not valid JSON"),
        ('{"x_resp', "not valid JSON"),
        ('{"x_response" {"code":"10000"}}', "not valid JSON"),
        ('{"x_response":{} "sign":"a"}', "not valid JSON"),
        ('{"x_response":{},}', "not valid JSON"),
        ('{"bad\\escape":{}}', "not valid JSON"),
        ("{x_response:{}}", "not valid JSON"),
        ("{1:{}}", "not valid JSON"),
        ("{null:{}}", "not valid JSON"),
        ("{'x_response':{}}", "not valid JSON"),
        ('{"x_response":{}} trailing', "text after the JSON object"),
        ('{"x_response":{}}}', "text after the JSON object"),
        ("{}{}", "text after the JSON object"),
        ("{} x", "text after the JSON object"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_protocol_error(body: str, message: str) -> None:
    with pytest.raises(GatewayProtocolError, match=message):
        top_level_members(body)


# ------------------------------------------------------------------------------------------------ find_answer


def test_find_answer_picks_the_methods_node() -> None:
    answer = find_answer(BODY, METHOD)
    assert answer == GatewayAnswer(node_name=NODE_NAME, node=Member(NODE, json.loads(NODE)), sign=SIGN, cert_sn=None)


def test_find_answer_picks_the_error_node() -> None:
    node = '{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}'
    answer = find_answer(f'{{"{ERROR_NODE}":{node},"sign":"{SIGN}"}}', METHOD)
    assert answer.node_name == "error_response"
    assert answer.node.raw == node
    assert answer.sign == SIGN


def test_find_answer_without_a_sign_has_none() -> None:
    # Unsigned errors exist (isv.invalid-app-id); the caller decides what an unsigned answer may mean.
    answer = find_answer('{"error_response":{"code":"40002","sub_code":"isv.invalid-app-id"}}', METHOD)
    assert answer.sign is None
    assert answer.cert_sn is None


def test_find_answer_reads_the_cert_sn() -> None:
    body = f'{{"{NODE_NAME}":{{"code":"10000"}},"alipay_cert_sn":"7513daaaa48aa3ba2e4018d84402479c","sign":"{SIGN}"}}'
    assert find_answer(body, METHOD).cert_sn == "7513daaaa48aa3ba2e4018d84402479c"


@pytest.mark.parametrize("cert_sn", ["123", "null", "{}", '["a"]'])
def test_find_answer_ignores_a_cert_sn_that_is_not_a_string(cert_sn: str) -> None:
    body = f'{{"{NODE_NAME}":{{"code":"10000"}},"alipay_cert_sn":{cert_sn},"sign":"{SIGN}"}}'
    assert find_answer(body, METHOD).cert_sn is None


@pytest.mark.parametrize(
    "body",
    [
        "{}",
        f'{{"sign":"{SIGN}"}}',
        # Another method's node is no answer to this one.
        f'{{"alipay_open_mini_version_list_query_response":{{"code":"10000"}},"sign":"{SIGN}"}}',
        # The method name with its dots kept is not the node name.
        f'{{"{METHOD}_response":{{"code":"10000"}},"sign":"{SIGN}"}}',
    ],
)
def test_find_answer_without_a_node_is_a_protocol_error(body: str) -> None:
    with pytest.raises(GatewayProtocolError, match="no response node"):
        find_answer(body, METHOD)


def test_find_answer_with_both_nodes_is_a_protocol_error() -> None:
    body = f'{{"{NODE_NAME}":{{"code":"10000"}},"error_response":{{"code":"40002"}},"sign":"{SIGN}"}}'
    with pytest.raises(GatewayProtocolError, match="more than one response node"):
        find_answer(body, METHOD)


@pytest.mark.parametrize("sign", ["123", "null", "true", '{"a":"b"}', '["x"]'])
def test_find_answer_refuses_a_sign_that_is_not_a_string(sign: str) -> None:
    with pytest.raises(GatewayProtocolError, match="sign is not a string"):
        find_answer(f'{{"{NODE_NAME}":{{"code":"10000"}},"sign":{sign}}}', METHOD)


def test_find_answer_refuses_the_forged_second_node() -> None:
    body = f'{{"{NODE_NAME}":{{"code":"10000"}},"sign":"{SIGN}","{NODE_NAME}":{{"code":"10000","evil":1}}}}'
    with pytest.raises(SignatureError):
        find_answer(body, METHOD)


def test_find_answer_passes_protocol_errors_through() -> None:
    with pytest.raises(GatewayProtocolError, match="not a JSON object"):
        find_answer("<html>", METHOD)


# ------------------------------------------------------------------------------------------------ error tree


def test_the_error_tree() -> None:
    for cls in (GatewayTransportError, GatewayProtocolError, SignatureError, GatewayResponseError):
        assert issubclass(cls, GatewayError)
    assert issubclass(GatewayUnavailable, GatewayResponseError)
    assert issubclass(BusinessError, GatewayResponseError)
    assert GatewayError.retryable is False
    assert GatewayTransportError.retryable is True
    assert GatewayProtocolError.retryable is False
    assert SignatureError.retryable is False
    assert GatewayUnavailable.retryable is True
    assert BusinessError.retryable is False


@pytest.mark.parametrize(
    ("code", "sub_code"),
    [
        ("20000", "isp.unknow-error"),
        ("20000", "aop.unknow-error"),
        ("20000", None),
        ("40005", "isv.app-call-limited"),
        ("40005", None),
        ("40004", "SYSTEM_ERROR"),
        ("40004", "system_error"),
        ("40004", "System_Error"),
        ("40004", "ISP.UNKNOW-ERROR"),
        ("40004", "isv.app-call-limited"),
    ],
)
def test_retryable_answers(code: str, sub_code: str | None) -> None:
    error = response_error(code, "msg", sub_code, "sub msg", signed=True)
    assert type(error) is GatewayUnavailable
    assert error.retryable is True


@pytest.mark.parametrize(
    ("code", "sub_code"),
    [
        ("40004", "BUNDLE_ID_NOT_EXIST"),
        ("40004", "APP_VERSION_IS_BLANK"),
        ("40004", None),
        ("40004", ""),
        ("40002", "isv.invalid-signature"),
        ("40002", "isv.invalid-app-id"),
        ("20001", "aop.invalid-app-auth-token"),
        ("40001", "isv.missing-method"),
        ("40006", "isv.insufficient-isv-permissions"),
    ],
)
def test_final_answers(code: str, sub_code: str | None) -> None:
    error = response_error(code, "msg", sub_code, "sub msg", signed=False)
    assert type(error) is BusinessError
    assert error.retryable is False


def test_response_error_keeps_what_the_gateway_said() -> None:
    error = response_error("40004", "Business Failed", "BUNDLE_ID_NOT_EXIST", "小程序不存在", signed=True)
    assert (error.code, error.msg, error.sub_code, error.sub_msg, error.signed) == (
        "40004",
        "Business Failed",
        "BUNDLE_ID_NOT_EXIST",
        "小程序不存在",
        True,
    )
    assert str(error) == "gateway answered 40004 Business Failed: BUNDLE_ID_NOT_EXIST 小程序不存在"
    assert repr(error) == "BusinessError(code='40004', sub_code='BUNDLE_ID_NOT_EXIST', signed=True)"


def test_response_error_without_a_sub_code() -> None:
    error = response_error("20000", "Service Currently Unavailable", None, None, signed=False)
    assert str(error) == "gateway answered 20000 Service Currently Unavailable"
    assert repr(error) == "GatewayUnavailable(code='20000', sub_code=None, signed=False)"
