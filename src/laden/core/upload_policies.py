"""An upload's policies, in the words the faces offer and the engine takes: what it does when
its remote name is taken (`CONFLICTS`), and when its local file changes before the commit
(`ON_CHANGE`). The first of each is the default."""

from __future__ import annotations

CONFLICTS = ("overwrite", "skip", "fail")
"""When the remote name is taken: replace it, keep it when it already has the file's size and
checksum, or fail (the service refuses the commit)."""

ON_CHANGE = ("stop", "restart")
"""When the local file changes before the commit: stop (nothing is committed), or restart
from the first byte."""
