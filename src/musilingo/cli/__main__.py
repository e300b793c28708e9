"""``python -m musilingo.cli`` (e.g. under ``accelerate launch -m musilingo.cli train ...``)."""

import sys

from musilingo.cli import main

sys.exit(main())
