"""livestrap discovery agent: inventories a network-booted node and reports it to the master.

It runs inside the live image on Debian's python3, so it imports nothing outside the
standard library and this package (a test enforces it): the image carries no venv.
"""

from __future__ import annotations

__version__ = "0.1.0"
AGENT_VERSION = __version__

__all__ = ["AGENT_VERSION", "__version__"]
