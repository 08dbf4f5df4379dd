"""The older name of :mod:`genesis.demo.simulate`, kept so that code written for it runs unchanged."""

import sys

from .demo import simulate

sys.modules[__name__] = simulate
