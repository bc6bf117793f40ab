"""``python -m bench.http``: see :mod:`bench.http.run`."""

import sys

from bench.http.run import main

sys.exit(main())
