"""``python -m agentwatch``: the ``agentwatch`` command."""

import sys

from agentwatch.cli import main

sys.exit(main())
