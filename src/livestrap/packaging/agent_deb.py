"""The livestrap-agent .deb: the agent's code, a launcher and a systemd unit enabled on install.

Only `livestrap/agent/*.py` ships (the agent imports nothing else), under python3's
dist-packages, with a `livestrap/__init__.py` stub that is just a namespace marker, and
`livestrap/agent/VERSION`: the package's full version, which the agent reports.
The postinst enables the unit on first install only and never restarts it: an upgrade
comes from the agent's own `install` action, and a restart would kill the apt run it is
part of; the agent exits by itself once its result is sent, and systemd restarts it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path

from livestrap.packaging.deb import DebControl, build_deb
from livestrap.run import LineSink

PACKAGE = "livestrap-agent"
UNIT_NAME = "livestrap-agent.service"
DIST_PACKAGES = Path("usr/lib/python3/dist-packages")


SOURCE_HASH_LEN = 10
# What agent_version() appends; a version without it was published by an operator
# (livestrap agent build-deb --version V).
BUILT_FROM_SOURCES = re.compile(rf"\+src[0-9a-f]{{{SOURCE_HASH_LEN}}}\Z")


def agent_version(source: Path | None = None) -> str:
    """`<agent __version__>+src<hash of its sources>`: an edited agent gets a new version
    by itself, and the same sources always give the same version (and the same bytes)."""
    from livestrap.agent import __version__

    digest = hashlib.sha256()
    for py in sorted((source or agent_source_dir()).glob("*.py")):
        digest.update(py.name.encode() + b"\0" + py.read_bytes() + b"\0")
    for name, text in packaging_files().items():  # a changed unit or script is a new version too
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return f"{__version__}+src{digest.hexdigest()[:SOURCE_HASH_LEN]}"


_DEB_VERSION = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*")
MAX_VERSION = 64  # the master's agent_version field: a longer one would refuse every report


def check_version(version: str) -> None:
    """A Debian version the agent's own check takes too (`install` names it as
    livestrap-agent=VERSION) and the master stores as agent_version; ValueError otherwise."""
    if len(version) > MAX_VERSION or not _DEB_VERSION.fullmatch(version):
        raise ValueError(
            f"{version[:80]!r} is not a Debian package version of at most {MAX_VERSION} "
            "characters (e.g. 0.1.1+test1)"
        )


def render_unit() -> str:
    """systemd unit: start as soon as the network is up; never give up."""
    return (
        "[Unit]\n"
        "Description=livestrap discovery agent\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "ConditionKernelCommandLine=|livestrap.url\n"
        "ConditionPathExists=|/etc/livestrap/agent.conf\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        "ExecStart=/usr/bin/livestrap-agent\n"
        "Restart=always\n"
        "RestartSec=5\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


LAUNCHER = '#!/bin/sh\nexec /usr/bin/python3 -m livestrap.agent "$@"\n'

POSTINST = f"""#!/bin/sh
set -e
if [ "$1" = configure ]; then
    # byte-compiled now, so no node compiles the agent at every boot (seconds under TCG)
    if command -v py3compile >/dev/null 2>&1; then
        py3compile -p {PACKAGE}
    fi
    # an upgrade: reload units, never restart the agent (it runs this very apt-get)
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null 2>&1 || true
    fi
fi
if [ "$1" = configure ] && [ -z "$2" ]; then
    # first install only: enable the unit
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        deb-systemd-helper enable {UNIT_NAME} >/dev/null || true
    else
        wants=/etc/systemd/system/multi-user.target.wants
        mkdir -p "$wants"
        ln -sf /lib/systemd/system/{UNIT_NAME} "$wants/{UNIT_NAME}"
    fi
fi
"""

PRERM = f"""#!/bin/sh
set -e
if command -v py3clean >/dev/null 2>&1; then
    py3clean -p {PACKAGE}
fi
"""

POSTRM = f"""#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        deb-systemd-helper purge {UNIT_NAME} >/dev/null || true
    fi
    rm -f /etc/systemd/system/multi-user.target.wants/{UNIT_NAME}
fi
"""


def agent_source_dir() -> Path:
    import livestrap.agent

    return Path(livestrap.agent.__file__).parent


def stage_agent_tree(dest: Path, source: Path | None = None, version: str | None = None) -> None:
    """Lay out the files of the package as installed, under `dest`."""
    source = source or agent_source_dir()
    pkg = dest / DIST_PACKAGES / "livestrap"
    (pkg / "agent").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""livestrap (only the discovery agent is installed)."""\n')
    for py in sorted(source.glob("*.py")):
        shutil.copyfile(py, pkg / "agent" / py.name)
    (pkg / "agent/VERSION").write_text(f"{version or agent_version(source)}\n")
    launcher = dest / "usr/bin/livestrap-agent"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(LAUNCHER)
    launcher.chmod(0o755)
    unit = dest / "lib/systemd/system" / UNIT_NAME
    unit.parent.mkdir(parents=True)
    unit.write_text(render_unit())
    debian = dest / "DEBIAN"
    debian.mkdir()
    for name, text in (("postinst", POSTINST), ("prerm", PRERM), ("postrm", POSTRM)):
        (debian / name).write_text(text)
        (debian / name).chmod(0o755)


def packaging_files() -> dict[str, str]:
    """Everything the package ships besides the agent's sources, by name."""
    return {"unit": render_unit(), "launcher": LAUNCHER, "postinst": POSTINST,
            "prerm": PRERM, "postrm": POSTRM}  # fmt: skip


def build_agent_deb(out_dir: Path, *, log: LineSink, version: str | None = None) -> Path:
    """Build livestrap-agent_<version>_all.deb into out_dir (same input → same bytes)."""
    version = version or agent_version()
    check_version(version)
    control = DebControl(
        package=PACKAGE,
        version=version,
        description=(
            "livestrap discovery agent\n"
            "Reports the hardware of a network-booted node to the livestrap master."
        ),
        depends=("python3",),
        extra={"Section": "admin", "Priority": "optional"},
    )
    with tempfile.TemporaryDirectory(prefix="livestrap-agent-") as tmp:
        tree = Path(tmp) / "tree"
        stage_agent_tree(tree, version=version)
        return build_deb(tree, control, out_dir, log=log, stage="agent-deb")
