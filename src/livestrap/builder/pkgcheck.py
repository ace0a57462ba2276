"""Report every requested package that APT cannot install, by name, all at once.

Runs as mmdebstrap's extract hook: after the package indexes are fetched and before any
extra package is installed, so a typo costs seconds, not a whole build.
Usage (by the build): python -m livestrap.builder.pkgcheck OUT_FILE PKG...
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def available_packages(policy_output: str) -> set[str]:
    """Names that `apt-cache policy` shows with a real candidate version."""
    found: set[str] = set()
    current = None
    for line in policy_output.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1]
            continue
        stripped = line.strip()
        if current and stripped.startswith("Candidate:"):
            if stripped.split(":", 1)[1].strip() != "(none)":
                found.add(current)
            current = None
    return found


def provided_packages(showpkg_output: str) -> set[str]:
    """Virtual names that `apt-cache showpkg` lists with at least one reverse provider."""
    provided: set[str] = set()
    current = None
    in_provides = False
    for line in showpkg_output.splitlines():
        if line.startswith("Package: "):
            current, in_provides = line.split(":", 1)[1].strip(), False
        elif line.startswith("Reverse Provides:"):
            in_provides = True
        elif in_provides and current and line.strip():
            provided.add(current)
    return provided


def missing_packages(
    requested: list[str], policy_output: str, showpkg_output: str = ""
) -> list[str]:
    """Requested names (an '=version' suffix ignored) that apt can neither install nor
    satisfy through a provider."""
    available = available_packages(policy_output) | provided_packages(showpkg_output)
    return [p for p in requested if p.split("=", 1)[0] not in available]


def main(argv: list[str]) -> int:
    out_file, requested = Path(argv[0]), argv[1:]
    names = sorted({p.split("=", 1)[0] for p in requested})
    env = dict(os.environ)
    if "MMDEBSTRAP_APT_CONFIG" in env:
        env["APT_CONFIG"] = env["MMDEBSTRAP_APT_CONFIG"]
    proc = subprocess.run(
        ["apt-cache", "policy", *names], capture_output=True, text=True, env=env, check=False
    )
    no_candidate = missing_packages(requested, proc.stdout)
    showpkg = ""
    if no_candidate:
        showpkg = subprocess.run(
            ["apt-cache", "showpkg", *sorted({p.split("=", 1)[0] for p in no_candidate})],
            capture_output=True, text=True, env=env, check=False,
        ).stdout  # fmt: skip
    missing = missing_packages(requested, proc.stdout, showpkg)
    out_file.write_text("".join(f"{name}\n" for name in missing))
    if missing:
        print(f"livestrap: packages not found: {' '.join(missing)}", file=sys.stderr)
        return 1
    print(f"livestrap: all {len(requested)} requested packages are available")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
