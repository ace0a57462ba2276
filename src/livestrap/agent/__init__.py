"""livestrap discovery agent: inventories a network-booted node and reports it to the master.

It runs inside the live image on Debian's python3, so it imports nothing outside the
standard library and this package (a test enforces it): the image carries no venv.
The .deb writes its full package version (`0.1.0+src<hash>`, or the one given to
`livestrap agent build-deb --version`) into VERSION beside this file; from a source tree
there is none and the agent reports `__version__`.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"
VERSION_FILE = Path(__file__).with_name("VERSION")


def installed_version(path: Path = VERSION_FILE) -> str:
    """The package version on disk now (after an upgrade: the new one), else __version__."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return __version__
    # at most 64 characters: the master's agent_version field (longer: every report refused)
    return text if text and len(text) <= 64 and text.isprintable() else __version__


AGENT_VERSION = installed_version()  # what this process runs, read once at start

__all__ = ["AGENT_VERSION", "VERSION_FILE", "__version__", "installed_version"]
