"""What an image keeps of the master's repository, so its agent can install from it later.

The build reaches the repository as `copy://<data-dir>/repo`, which means nothing on a
node; the node reaches it as `<livestrap.url>/repo`. So the image keeps only what does
not depend on the address: the public key (armored) and the suite and components, at
the paths the agent reads (livestrap.agent.aptinstall). The pin the build wrote for the
repository (/etc/apt/preferences.d/livestrap-livestrap.pref, a `release` pin on its
release file's fields, never on its address) stays in the image and matches the agent's
source too.
"""

from __future__ import annotations

import json
from pathlib import Path

from livestrap.apt import KeyReader, armor_key
from livestrap.packaging.master_repo import REPO_NAME
from livestrap.spec import ResolvedSpec

# The agent's aptinstall.IMAGE_REPO_KEY / IMAGE_REPO_CONFIG, spelled again here so that the
# build's fingerprint (builder/*.py) covers them; tests/unit/test_build_noderepo.py checks.
IMAGE_REPO_KEY = Path("/usr/share/livestrap/master-repo.asc")
IMAGE_REPO_CONFIG = Path("/etc/livestrap/master-repo.json")


def image_repo_files(spec: ResolvedSpec, read_key: KeyReader) -> dict[str, str]:
    """Path inside the image (relative) -> text; empty when the spec has no master repo."""
    repo = next((r for r in spec.repos if r.name == REPO_NAME), None)
    if repo is None or repo.key is None:
        return {}
    config = {"suite": repo.suite, "components": list(repo.components)}
    return {
        str(IMAGE_REPO_KEY.relative_to("/")): armor_key(read_key(str(repo.key))),
        str(IMAGE_REPO_CONFIG.relative_to("/")): json.dumps(config, indent=2) + "\n",
    }


def write_image_repo(rootfs: Path, spec: ResolvedSpec, read_key: KeyReader) -> list[str]:
    """Write image_repo_files into the tree (0644); returns the paths written."""
    files = image_repo_files(spec, read_key)
    for rel, text in files.items():
        path = rootfs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
    return sorted(f"/{rel}" for rel in files)
