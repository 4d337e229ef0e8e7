"""edgemtl: a multi-task vision network from training to a live camera on an edge device.

This top-level package imports nothing heavy, so `edgemtl.runtime` stays usable without PyTorch.
"""

from edgemtl.errors import EdgemtlError

__version__ = "0.1.0"

__all__ = ["EdgemtlError", "__version__"]
