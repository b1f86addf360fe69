"""Suite-wide test settings.

Property tests explore new random examples on every local run; under CI (``CI`` set, as ``.ci/run``
sets it) they run a fixed, derandomized set, so a CI result can be reproduced by running the suite
again, and print the blob that replays a failure. Neither has a deadline: speed is measured in
``bench/``, not asserted here (a first example that opens DuckDB cold may take a few hundred ms).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("local", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, database=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "local")
