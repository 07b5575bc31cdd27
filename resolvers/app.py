"""The root field ``miniApp``: the app the credentials and the merchant token designate.

It makes no call itself; its fields (``graph.types.app``) fetch what they need, each only when selected.
"""

from __future__ import annotations

from graph.types.app import MiniApp


async def mini_app() -> MiniApp:
    return MiniApp()
