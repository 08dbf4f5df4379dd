"""The older name of :mod:`genesis.demo.samples`, kept so that code written for it runs unchanged."""

import sys

from .demo import samples

sys.modules[__name__] = samples
