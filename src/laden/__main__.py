"""`python -m laden` is the `laden` command (with the interpreter's own exit, see
`cli.entry`)."""

import sys

from .cli import main

sys.exit(main())
