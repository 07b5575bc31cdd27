"""The default HTTP transport under the gateway clients: httpx's API over aiohttp's connection pool.

benchmarks/speed.py measured ~1.2 ms of CPU per gateway call with it against ~3 ms with httpx's own transport
(httpcore + anyio): the difference between keeping up with a 50 ms gateway at 32 concurrent requests on one
core and not. httpx-aiohttp maps every aiohttp connection error to ``httpx.ConnectTimeout``; a refused or
dropped connection is not a timeout, and operators read the difference in our errors, so it is put right here.
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


class GatewayTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.TimeoutException as exc:
            cause = exc.__cause__
            timed_out = isinstance(cause, aiohttp.ServerTimeoutError | asyncio.TimeoutError | TimeoutError)
            if isinstance(cause, aiohttp.ClientConnectionError) and not timed_out:
                raise httpx.ConnectError(type(cause).__name__, request=request) from cause
            raise
