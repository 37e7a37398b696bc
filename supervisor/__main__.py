"""``python -m supervisor``: the CLI, for a caller that has an interpreter but not the
script on its PATH (``serve`` starts ``watch`` this way, with ``sys.executable``)."""

import sys

from supervisor.cli import main

sys.exit(main())
