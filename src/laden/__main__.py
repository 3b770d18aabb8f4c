"""`python -m laden` is the `laden` command."""

import sys

from .cli import main

sys.exit(main())
