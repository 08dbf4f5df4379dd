"""``python -m genesis.demo``: the streaming notebook's cells against the demo topics."""

import sys

from .walkthrough import main

sys.exit(main())
