"""`python -m specialists COMMAND --language LANG`: see specialists/cli.py."""

import sys

from specialists.cli import main

sys.exit(main())
