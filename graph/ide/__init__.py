"""The GraphiQL playground, served from the package itself so it works where no CDN can be reached.

``page.py`` renders the page and says whether GraphiQL's browser builds were copied into ``static/``;
``build.py`` is ``python -m graph build-ide``, which installs them with npm from the committed lockfile.
"""

from __future__ import annotations
