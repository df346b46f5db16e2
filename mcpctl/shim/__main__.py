"""`python -m mcpctl.shim NAME`: how the CLI starts a shim."""

import sys

from mcpctl.shim.loop import main

sys.exit(main())
