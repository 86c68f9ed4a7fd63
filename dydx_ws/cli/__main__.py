"""``python -m dydx_ws.cli``: the same as the ``dydx-ws`` console script."""

import sys

from ._main import main

sys.exit(main())
