"""Serving layer: what one token costs to make on each accelerator.

>>> from flopledger.serving import estimate_serving
>>> e = estimate_serving(model="llama-3.1-70b", accelerator="h200", count=8, precision="fp8",
...                      input_tokens=1000, output_tokens=1000)
>>> e.output_tokens_per_s > 0
True
"""

from flopledger.serving.calibration import Calibration, load_calibration
from flopledger.serving.compare import LocalVersusApi, compare_local_to_api
from flopledger.serving.estimate import ServingEstimate, estimate_serving
from flopledger.serving.validate import ValidationReport, ValidationRow, validate_serving

__all__ = [
    "Calibration",
    "LocalVersusApi",
    "ServingEstimate",
    "ValidationReport",
    "ValidationRow",
    "compare_local_to_api",
    "estimate_serving",
    "load_calibration",
    "validate_serving",
]
