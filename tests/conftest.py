"""Suite-wide test settings.

Property tests explore new random examples on every local run; under CI (``CI`` set, as ``.ci/run``
sets it) they run a fixed, derandomized set, so a CI result can be reproduced by running the suite
again, and print the blob that replays a failure.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
