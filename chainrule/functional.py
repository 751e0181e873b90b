"""The functional interface: every operation as a plain function.

``import chainrule.functional as F`` then ``F.relu(x)``, ``F.cross_entropy(logits, t)``.
"""

from chainrule.ops import *  # noqa: F403
from chainrule.ops import __all__  # noqa: F401
