"""The master's .deb (`make deb`), installed into a fresh Debian 12 tree and booted with
systemd in systemd-nspawn: both units run, the API as `livestrap`, and an upgrade to a
rebuilt package with a higher version keeps the data.

Holds the machine's build lock from the tree's mmdebstrap to the container's halt (only one
image build at a time on this machine; the builder service builds inside the container).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from helpers import TEST_CACHE, require_build_tools, require_commands
from livestrap import __version__
from livestrap.builder.rootfs import copy_debs, private_ns
from livestrap.packaging import master_units as mu
from livestrap.packaging.master_deb import build_master_deb
from livestrap.resolve import resolve
from livestrap.spec import BuildSpec
from masterproc import free_port
from nspawn import Container, booted, mask_host_facing_units

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).resolve().parents[2]
BUILD_LOCK = Path("/run/lock/livestrap-build.lock")
LOCK_WAIT_S = 1800.0  # an e2e image build may hold it
UPGRADE_VERSION = f"{__version__}+upgrade1"
HEALTH_TIMEOUT_S = 120.0
BUILD_TIMEOUT_S = 900.0
MASTER_EXPOSURE_MAX = 2.0


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make deb`'s package, built once for the session."""
    require_commands("dpkg-deb", "strip")
    if not Path("/usr/bin/python3.11").exists():
        pytest.skip("missing: /usr/bin/python3.11 (Debian's python3.11)")
    return build_master_deb(SOURCE, tmp_path_factory.mktemp("deb"), __version__, log=_quiet)


def dpkg_field(deb: Path, *fields: str) -> str:
    return subprocess.run(["dpkg-deb", "--field", str(deb), *fields], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip


def test_package_ships_a_clean_venv_and_keeps_out_of_the_data_dir(deb: Path) -> None:
    assert deb.name == f"livestrap_{__version__}_amd64.deb"
    files = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True,
                           text=True, check=True).stdout.splitlines()  # fmt: skip
    paths = [line.split()[5] for line in files]
    owners = {line.split()[1] for line in files}
    assert owners == {"root/root"}
    for expected in ("./usr/bin/livestrap", "./etc/livestrap/livestrap.toml",
                     "./lib/systemd/system/livestrap-master.service",
                     "./lib/systemd/system/livestrap-builder.service",
                     "./usr/share/doc/livestrap/copyright",
                     "./usr/share/doc/livestrap/changelog.gz",
                     "./opt/livestrap/bin/python3.11"):  # fmt: skip
        assert expected in paths
    assert not [p for p in paths if "__pycache__" in p or p.endswith(".pyc")]
    assert not [p for p in paths if p.startswith("./var/lib/livestrap")]
    assert any("site-packages/fastapi/" in p for p in paths)
    fields = dpkg_field(deb, "Depends", "Recommends")
    assert "mmdebstrap" in fields and "python3.11" in fields and "adduser" in fields
    assert "Recommends: qemu-system-x86, ovmf, ipxe" in fields
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True,
                             check=True).stdout  # fmt: skip
    assert b"./md5sums" in control and b"./conffiles" in control


def test_lintian_reports_no_errors(deb: Path) -> None:
    require_commands("lintian")
    out = subprocess.run(["lintian", "--tag-display-limit", "0", str(deb)],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    errors = [line for line in out.stdout.splitlines() if line.startswith("E:")]
    assert not errors, "\n".join(errors[:40])


@pytest.fixture(scope="module")
def build_lock() -> Iterator[None]:
    BUILD_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with BUILD_LOCK.open("a") as f:
        _lock(f)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _lock(f: IO[str]) -> None:
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                pytest.fail(f"{BUILD_LOCK} still held after {LOCK_WAIT_S:.0f} s")
            time.sleep(2)


@pytest.fixture(scope="module")
def tree(deb: Path, build_lock: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian 12 minbase + systemd + the package (and its Depends), from the host mirror."""
    require_build_tools()
    require_commands("systemd-nspawn", "nsenter", "systemd-analyze")
    root = tmp_path_factory.mktemp("deb-tree") / "root"
    spec = resolve(BuildSpec())
    cache = TEST_CACHE / "apt-archives"
    cache.mkdir(parents=True, exist_ok=True)
    archives = '"$1/var/cache/apt/archives"'
    made = subprocess.run(
        private_ns([
            "mmdebstrap", "--mode=root", "--variant=minbase", "--include=systemd-sysv",
            f"--include={deb}",  # bind-mounted into the chroot for apt by the hook dir
            "--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount",
            "--aptopt=Acquire::Languages \"none\"",
            "--aptopt=APT::Install-Recommends \"false\"",
            f"--setup-hook=mkdir -p {archives} && {copy_debs(str(cache), archives)}",
            f"--customize-hook={copy_debs(archives, str(cache))}",
            spec.suite or "", str(root),
            f"deb [signed-by={spec.mirror_key}] {spec.mirror} {spec.suite} main",
        ]),
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-4000:]
    mask_host_facing_units(root)
    return root


def test_units_pass_systemd_analyze_verify(tree: Path) -> None:
    for unit in mu.UNITS:
        out = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", f"--root={tree}", unit],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
    # the sandbox's score (0 best, 10 worst): 1.4 today; --threshold is in tenths
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={tree}",
         f"--threshold={MASTER_EXPOSURE_MAX * 10:.0f}", mu.MASTER_UNIT],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr


def _supports(tree: Path, *argv: str) -> bool:
    out = subprocess.run(["chroot", str(tree), "/usr/bin/livestrap", *argv, "--help"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    return out.returncode == 0 and "--config" in out.stdout


@dataclass
class Master:
    container: Container
    tree: Path
    port: int
    serves: bool  # `livestrap serve --config` exists (the config branch is merged)
    builds: bool  # `livestrap builder` exists

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self) -> str:
        return (self.tree / "var/lib/livestrap/admin.token").read_text().strip()

    def require_serving(self) -> None:
        if not self.serves:
            pytest.skip("`livestrap serve --config` is not in this tree yet (branch i14-config)")
        assert self.container.wait_active(mu.MASTER_UNIT) == "active", self.container.journal(
            mu.MASTER_UNIT
        )
        wait_healthy(self.url)


def wait_healthy(url: str) -> dict[str, Any]:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while True:
        try:
            resp = httpx.get(f"{url}/healthz", timeout=5)
            if resp.status_code == 200:
                body: dict[str, Any] = resp.json()
                return body
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"no /healthz at {url} in {HEALTH_TIMEOUT_S} s"
        time.sleep(1)


@pytest.fixture(scope="module")
def master(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    """The tree booted; the config (a changed conffile, kept on upgrade) on a free port."""
    port = free_port()
    config = tree / "etc/livestrap/livestrap.toml"
    config.write_text(config.read_text().replace(f"port = {mu.DEFAULT_PORT}", f"port = {port}"))
    serves = _supports(tree, "serve")
    builds = _supports(tree, "builder")
    console = tmp_path_factory.mktemp("nspawn") / "console.log"
    with booted(tree, console) as container:
        started = time.monotonic()
        container.wait_booted()
        print(f"nspawn: booted in {time.monotonic() - started:.1f} s")
        yield Master(container, tree, port, serves, builds)


def test_both_units_are_enabled_by_the_package(master: Master) -> None:
    for unit in mu.UNITS:
        out = master.container.run("systemctl", "is-enabled", unit)
        assert out.stdout.strip() == "enabled", out.stdout + out.stderr


def test_data_dir_belongs_to_the_service_user(master: Master) -> None:
    out = master.container.run("stat", "-c", "%U:%G %a", "/var/lib/livestrap", check=True)
    assert out.stdout.split() == ["livestrap:livestrap", "750"]
    out = master.container.run("dpkg-statoverride", "--list", "/var/lib/livestrap")
    assert out.stdout.split() == ["livestrap", "livestrap", "750", "/var/lib/livestrap"]


def test_api_runs_as_livestrap_and_answers(master: Master) -> None:
    master.require_serving()
    pid = master.container.run("systemctl", "show", "-P", "MainPID", mu.MASTER_UNIT).stdout
    status = master.container.run("cat", f"/proc/{pid.strip()}/status", check=True).stdout
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    passwd = master.container.run("getent", "passwd", "livestrap", check=True).stdout
    assert uid == passwd.split(":")[2] and uid != "0"
    assert "CapEff:\t0000000000000000" in status  # no capability left at all
    assert wait_healthy(master.url)


def test_build_queued_through_the_api_is_done_by_the_builder(master: Master) -> None:
    master.require_serving()
    if not master.builds:
        pytest.skip("`livestrap builder` is not in this tree yet (branch i14-builder)")
    assert master.container.wait_active(mu.BUILDER_UNIT) == "active", master.container.journal(
        mu.BUILDER_UNIT
    )
    auth = {"Authorization": f"Bearer {master.token()}"}
    with httpx.Client(base_url=f"{master.url}/api/v1", headers=auth, timeout=30) as client:
        resp = client.post("/builds", json={"activate": True})
        assert resp.status_code == 202, resp.text
        build_id = resp.json()["id"]
        deadline = time.monotonic() + BUILD_TIMEOUT_S
        while (build := client.get(f"/builds/{build_id}").json())["state"] in (
            "queued", "running"
        ):  # fmt: skip
            assert time.monotonic() < deadline, f"build {build_id} still {build['state']}"
            time.sleep(2)
    assert build["state"] == "succeeded", json.dumps(build) + master.container.journal(
        mu.BUILDER_UNIT
    )
    assert (master.tree / "var/lib/livestrap/images" / build["image_id"]).is_dir()


def rebuilt_with_version(deb: Path, version: str, out_dir: Path) -> Path:
    """The same package with a higher version (unpacked, Version bumped, packed again)."""
    tree = out_dir / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN/control"
    lines = control.read_text().splitlines()
    control.write_text("".join(
        f"Version: {version}\n" if ln.startswith("Version:") else f"{ln}\n" for ln in lines
    ))  # fmt: skip
    dest = out_dir / f"livestrap_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(tree),
                    str(dest)], check=True, capture_output=True)  # fmt: skip
    shutil.rmtree(tree)
    return dest


def _data_files(tree: Path) -> dict[str, bytes]:
    data = tree / "var/lib/livestrap"
    return {
        p.name: p.read_bytes()
        for p in [*data.glob("*.token"), data / "livestrap.db", data / "upgrade-marker"]
        if p.is_file()
    }


def test_upgrade_keeps_the_data_and_the_changed_config(
    master: Master, deb: Path, tmp_path: Path
) -> None:
    marker = master.tree / "var/lib/livestrap/upgrade-marker"
    marker.write_text("kept\n")
    config_before = (master.tree / "etc/livestrap/livestrap.toml").read_text()
    before = _data_files(master.tree)
    new = rebuilt_with_version(deb, UPGRADE_VERSION, tmp_path)
    shutil.copy(new, master.tree / "root" / new.name)  # /tmp is a tmpfs in the container
    out = master.container.run("env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "-i",
                               f"/root/{new.name}", timeout_s=600)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    version = master.container.run("dpkg-query", "-W", "-f=${Version}", "livestrap").stdout
    assert version == UPGRADE_VERSION
    assert (master.tree / "etc/livestrap/livestrap.toml").read_text() == config_before
    after = _data_files(master.tree)
    assert after.keys() >= before.keys()
    for name in ("upgrade-marker", "admin.token", "discovery.token"):
        assert after.get(name) == before.get(name), name
    master.require_serving()  # the upgrade started the units again
    for unit in mu.UNITS if master.builds else (mu.MASTER_UNIT,):
        assert master.container.wait_active(unit) == "active", master.container.journal(unit)
