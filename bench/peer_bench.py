"""Peer benchmark: Debian's live-build makes the image livestrap's default spec makes
(same suite, package set and host mirror; kernel + initrd + squashfs for a network
boot), timed as a cold build on the same machine right after livestrap's own cold build
in the same run; sizes and time are reported as ratios. Then both images boot through
one master's iPXE path, alternating (bench/peer_boot.py): power-on -> registered, as a ratio.

Run as root: `.venv/bin/python bench/peer_bench.py [--work DIR] [--keep] [--boots N]`.
Each build holds the machine-wide build lock (bench/tools.py). live-build runs in a
private mount namespace, so the /proc, /sys and /dev/pts it mounts in its chroot cannot
outlive it; whatever is still mounted under the work dir afterwards is unmounted
(deepest first) before anything there is deleted.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_boot import (
    PEER_SPEC,
    boot_both,
    boot_note,
    boot_summary,
    import_lb_image,
    intro_text,
    livestrap_cold,
    load_note,
    paired,
    render_boot,
    stage_lines,
)
from report import MB, Goal, machine_line, save_part
from tools import build_lock, ensure_debs

from livestrap.builder import squashfs
from livestrap.builder.rootfs import private_ns
from livestrap.packaging.agent_deb import build_agent_deb
from livestrap.packaging.master_repo import AGENT_TOOLS
from livestrap.resolve import resolve
from livestrap.run import BuildLog, run
from livestrap.spec import ResolvedSpec
from livestrap.store.images import ImageStore

COMMAND = ".venv/bin/python bench/peer_bench.py"
MIRROR_SHOWN = "<host mirror>"
GOAL_RATIO = 3.0
WIDTH = 88  # the page's line length
KERNEL_PREFIX = "linux-image-"
LIST_NAME = "livestrap.list.chroot"
# The artifacts a network boot needs, as (role, livestrap's file, live-build's glob).
ROLES = (
    ("kernel", "vmlinuz", "vmlinuz*"),
    ("initrd", "initrd.img", "initrd.img*"),
    ("root filesystem", "root.squashfs", "filesystem.squashfs"),
)
# live-build stages as `lb build` announces them ("[date] lb chroot").
LB_STAGE_RE = re.compile(r"\] lb (bootstrap|chroot|binary)\b")
INITRAMFS_RUN = "update-initramfs: Generating"


@dataclass(frozen=True)
class PeerInputs:
    """What livestrap's default image is made of, in the terms live-build takes."""

    suite: str
    areas: list[str]
    kernel_flavour: str
    packages: list[str]
    mirror: str
    compression: str
    level: str | None

    @property
    def mksquashfs_options(self) -> str:
        """Block size is not an lb option; live-build passes $MKSQUASHFS_OPTIONS on."""
        return f"-b {squashfs.BLOCK_SIZE}"


def peer_inputs(spec: ResolvedSpec) -> PeerInputs:
    """livestrap's default package set minus its kernel (lb installs that from
    --linux-packages/--linux-flavours) plus the agent's optional tools; the agent .deb
    itself is added as a local package (config/packages.chroot), see write_config."""
    assert spec.kernel.startswith(KERNEL_PREFIX), spec.kernel
    packages = [p for p in spec.all_packages() if p != spec.kernel]
    packages = list(dict.fromkeys([*packages, *AGENT_TOOLS]))
    options = squashfs.COMPRESSOR_OPTIONS[spec.compression]
    level = None
    if "-Xcompression-level" in options:
        level = options[options.index("-Xcompression-level") + 1]
    return PeerInputs(
        suite=spec.suite,
        areas=list(spec.components),
        kernel_flavour=spec.kernel.removeprefix(KERNEL_PREFIX),
        packages=packages,
        mirror=spec.mirror,
        compression=spec.compression,
        level=level,
    )


def lb_config_argv(inp: PeerInputs, mirror: str) -> list[str]:
    """`lb config` for a netboot image without its tarball (binary/live/ then holds
    vmlinuz, initrd.img and filesystem.squashfs, like ours) and without what livestrap's
    image lacks: security/updates/backports, firmware, bootloaders, installer, memtest,
    source indexes. Every mirror is the host's (pure; `mirror` may be a placeholder)."""
    url = mirror.rstrip("/") + "/"
    argv = [
        "lb", "config",
        "--mode", "debian",
        "--distribution", inp.suite,
        "--architecture", "amd64",
        "--archive-areas", " ".join(inp.areas),
        "--mirror-bootstrap", url,
        "--mirror-chroot", url,
        "--mirror-binary", url,
        # unused with --security false; set so that nothing but the host mirror is named
        "--mirror-chroot-security", url,
        "--mirror-binary-security", url,
        "--debootstrap-options", "--variant=minbase",
        "--binary-images", "netboot",
        "--net-tarball", "false",
        # "," is an empty list that lb keeps (an empty value falls back to syslinux)
        "--bootloaders", ",",
        "--security", "false",
        "--updates", "false",
        "--backports", "false",
        "--firmware-chroot", "false",
        "--firmware-binary", "false",
        "--debian-installer", "none",
        "--memtest", "none",
        "--win32-loader", "false",
        "--loadlin", "false",
        "--zsync", "false",
        "--checksums", "none",
        "--source", "false",
        "--apt-source-archives", "false",
        "--apt-recommends", "false",
        "--apt-indices", "false",
        "--linux-packages", KERNEL_PREFIX.rstrip("-"),
        "--linux-flavours", inp.kernel_flavour,
        "--chroot-squashfs-compression-type", inp.compression,
        # --build-with-chroot stays true (lb's default): with false, lb checks for
        # apt-ftparchive on the host but runs it in the chroot for config/packages.chroot
    ]  # fmt: skip
    if inp.level:
        argv += ["--chroot-squashfs-compression-level", inp.level]
    return argv


def lb_build_argv() -> list[str]:
    return ["lb", "build"]


def shown_commands(inp: PeerInputs) -> list[str]:
    """The commands as the page shows them, with the mirror replaced by a placeholder."""
    argv = lb_config_argv(inp, MIRROR_SHOWN)
    pairs = [shlex.join(argv[i : i + 2]) for i in range(2, len(argv), 2)]
    return [
        " \\\n    ".join([shlex.join(argv[:2]), *pairs]),
        f"MKSQUASHFS_OPTIONS={shlex.quote(inp.mksquashfs_options)} {shlex.join(lb_build_argv())}",
    ]


def add_agent(work: Path, log: BuildLog) -> None:
    """The agent .deb as a local package, built before the clock starts (livestrap's
    benchmark publishes it to the master's repository before its clock starts too)."""
    build_agent_deb(work / "config/packages.chroot", log=log.write)


def write_config(work: Path, inp: PeerInputs, log: BuildLog) -> None:
    """`lb config`, then our package list in place of lb's default live.list.chroot
    (live-config is not in livestrap's image)."""
    run(lb_config_argv(inp, inp.mirror), stage="lb config", log=log.write, cwd=work)
    lists = work / "config/package-lists"
    for default in lists.glob("*.list.chroot"):
        default.unlink()
    (lists / LIST_NAME).write_text("\n".join(inp.packages) + "\n")


class StageClock:
    """A log sink that also notes when `lb build` enters each of its stages, and how
    often an initramfs was made (livestrap makes it once)."""

    def __init__(self, log: BuildLog) -> None:
        self.log = log
        self.started: dict[str, float] = {}
        self.initramfs_runs = 0

    def __call__(self, line: str) -> None:
        m = LB_STAGE_RE.search(line)
        if m and m.group(1) not in self.started:
            self.started[m.group(1)] = time.monotonic()
        self.initramfs_runs += INITRAMFS_RUN in line
        self.log.write(line)

    def stages(self, end: float) -> dict[str, float]:
        marks = sorted(self.started.items(), key=lambda kv: kv[1])
        ends = [t for _, t in marks[1:]] + [end]
        return {name: round(stop - t, 1) for (name, t), stop in zip(marks, ends, strict=True)}


def artifact_sizes(live: Path) -> dict[str, int]:
    """live-build's file for each role in binary/live (its kernel file names carry the
    version: vmlinuz-6.1.0-..-amd64)."""
    sizes: dict[str, int] = {}
    for _, _, pattern in ROLES:
        found = sorted(live.glob(pattern))
        if len(found) != 1:
            raise RuntimeError(f"expected one {pattern} in {live}, found {len(found)}")
        sizes[found[0].name] = found[0].stat().st_size
    return sizes


def boot_bytes(chroot: Path) -> int:
    """/boot of the chroot, which live-build leaves in filesystem.squashfs (livestrap
    leaves it out: the kernel and initrd are served beside the squashfs)."""
    return sum(f.stat().st_size for f in (chroot / "boot").rglob("*") if f.is_file())


def installed_count(chroot: Path) -> int | None:
    out = subprocess.run(
        ["dpkg-query", f"--admindir={chroot}/var/lib/dpkg", "-W", "-f", "${db:Status-Abbrev}\n"],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        return None
    return sum(1 for line in out.stdout.splitlines() if line.startswith("ii"))


def package_version(name: str) -> str | None:
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True,
                         text=True)  # fmt: skip
    return out.stdout.strip() or None if out.returncode == 0 else None


def mounts_under(folder: Path) -> list[str]:
    """Mount points at or below `folder` in this mount namespace, deepest first (and,
    for one point mounted twice, the later mount first)."""
    root = str(folder.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == root or point.startswith(root + "/"):
            points.append(point)
    return sorted(reversed(points), key=lambda p: p.count("/"), reverse=True)


def unmount_all(folder: Path) -> list[str]:
    """Unmount everything under `folder`; returns what could not be unmounted."""
    for _ in range(3):
        points = mounts_under(folder)
        if not points:
            return []
        for point in points:
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "--lazy", point], capture_output=True)
    return mounts_under(folder)


@contextmanager
def no_interrupts() -> Iterator[None]:
    """Cleanup must finish: a second Ctrl-C (or TERM) waits until it has."""
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def cleanup(work: Path, *, failed: bool, keep: bool) -> None:
    """Unmount first, so that nothing `lb clean` or rmtree deletes is a host tree."""
    with no_interrupts():
        left = unmount_all(work)
        if left:
            raise RuntimeError(f"still mounted, {work} left in place: {', '.join(left)}")
        if failed and (work / "config").is_dir():
            subprocess.run(["lb", "clean"], cwd=work, capture_output=True)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def measure(work: Path, inp: PeerInputs, log: BuildLog) -> dict[str, Any]:
    """Config and build (timed, under the build lock); sizes and package count after."""
    if (work / "cache").exists():
        raise RuntimeError(f"{work}/cache exists: not a cold build")
    env = {"MKSQUASHFS_OPTIONS": inp.mksquashfs_options}
    clock = StageClock(log)
    add_agent(work, log)
    with build_lock():
        load = round(os.getloadavg()[0], 2)
        t0 = time.monotonic()
        write_config(work, inp, log)
        configured = time.monotonic()
        run(private_ns(lb_build_argv()), stage="lb build", log=clock, env=env, cwd=work)
        end = time.monotonic()
    return {
        "seconds": round(end - t0, 1),
        "stages": {"config": round(configured - t0, 1), **clock.stages(end)},
        "sizes": artifact_sizes(work / "binary/live"),
        "packages": installed_count(work / "chroot"),
        "initramfs_runs": clock.initramfs_runs,
        "boot_bytes_in_squashfs": boot_bytes(work / "chroot"),
        "load_1min": load,
    }


def ratios(peer: dict[str, Any], ours: dict[str, Any]) -> dict[str, float]:
    """live-build / livestrap for the cold build's seconds, each artifact and the total."""
    peer_by_role = dict(zip([r for r, _, _ in ROLES], peer["sizes"].values(), strict=True))
    out = {"seconds": round(peer["seconds"] / ours["seconds"], 2)}
    for role, ours_name, _ in ROLES:
        out[role] = round(peer_by_role[role] / ours["sizes"][ours_name], 2)
    out["total"] = round(sum(peer["sizes"].values()) / sum(ours["sizes"].values()), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, help="live-build's work dir (default: a new one)")
    parser.add_argument("--keep", action="store_true", help="keep the work dirs and lb's log")
    parser.add_argument("--boots", type=int, default=3, help="boots of each image (0: none)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("peer_bench: live-build needs root")
    # Ctrl-C and SIGTERM (make being stopped) unwind, so cleanup runs; SIGINT even when
    # inherited ignored (a background job of a non-interactive shell)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ensure_debs({"live-build": "lb"})
    inp = peer_inputs(resolve(PEER_SPEC))
    run_dir = Path(tempfile.mkdtemp(prefix="livestrap-peer-", dir="/var/tmp"))
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        if any(args.work.iterdir()):
            sys.exit(f"peer_bench: {args.work} is not empty (a cold build needs an empty one)")
        work = args.work.resolve()
    else:
        work = run_dir / "lb"
        work.mkdir()
    try:
        paired_run(args, inp, run_dir, work)
    finally:
        if not args.keep and not unmount_all(run_dir):  # never rmtree across a mount
            shutil.rmtree(run_dir, ignore_errors=True)


def paired_run(args: argparse.Namespace, inp: PeerInputs, run_dir: Path, work: Path) -> None:
    """livestrap's cold build, live-build's right after it, then the boots of both."""
    store = ImageStore(run_dir / "data")
    ours = livestrap_cold(store, run_dir / "cache", run_dir / "livestrap.log")
    print(f"livestrap cold build: {ours['seconds']} s", flush=True)
    log_path = work.with_name(work.name + ".log")  # beside the work dir: survives lb clean
    log = BuildLog(log_path)
    outcome = "failed"
    try:
        peer = measure(work, inp, log)
        if args.boots:
            builder = f"live-build {package_version('live-build')}"
            lb_id = import_lb_image(store, ours["image"], work / "binary/live", work / "chroot",
                                    builder)  # fmt: skip
        outcome = "ok"
    except (KeyboardInterrupt, SystemExit):
        outcome = "interrupted"
        raise
    finally:
        log.close()
        cleanup(work, failed=outcome != "ok", keep=args.keep)
        if outcome != "ok":
            print(f"peer_bench: live-build {outcome}; its log: {log_path}", file=sys.stderr)
        elif not args.keep:
            log_path.unlink(missing_ok=True)
    print(f"live-build cold build: {peer['seconds']} s", flush=True)
    part: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "versions": {name: package_version(name) for name in ("live-build", "debootstrap")},
        "commands": shown_commands(inp),
        "kernel": f"{KERNEL_PREFIX}{inp.kernel_flavour}",
        "package_list": inp.packages,
        "live_build": peer,
        "livestrap": {k: ours[k] for k in ("seconds", "stages", "sizes", "packages", "load_1min")},
    }
    part["ratios"] = ratios(peer, part["livestrap"])
    print(f"live-build / livestrap: {part['ratios']['seconds']}x the time", flush=True)
    if args.boots:
        images = {"livestrap": ours["image"], "live_build": lb_id}
        boots = boot_both(store, images, run_dir, args.boots)
        part["boot"] = boot_summary(boots)
        print(f"boot, live-build / livestrap: {part['boot']['ratio']}x", flush=True)
    save_part("peer", part)


def goals(part: dict[str, Any]) -> list[Goal]:
    ratio = part.get("ratios", {}).get("seconds")
    return [
        ("cold build vs Debian live-build (same packages, same mirror)",
         f"≥ {GOAL_RATIO:.0f}× faster", f"{ratio:.2f}×" if ratio else "–",
         ratio >= GOAL_RATIO if ratio else None),
    ]  # fmt: skip


def _mb(n: int | None) -> str:
    return f"{n / MB:.1f}" if n is not None else "–"


def render(part: dict[str, Any]) -> list[str]:
    lb = part["live_build"]
    ours = part.get("livestrap")
    r = part.get("ratios", {})
    peer_sizes = list(lb["sizes"].values())

    def ratio(key: str) -> str:
        return f"{r[key]:.2f}×" if key in r else "–"

    rows = [
        "| | livestrap | live-build | live-build / livestrap |",
        "|---|---|---|---|",
        f"| cold build (s) | {ours['seconds']:.1f} | **{lb['seconds']:.1f}** | "
        f"**{ratio('seconds')}** |"
        if ours
        else f"| cold build (s) | – | **{lb['seconds']:.1f}** | – |",
    ]
    for i, (role, ours_name, _) in enumerate(ROLES):
        peer_name = list(lb["sizes"])[i]
        ours_cell = _mb(ours["sizes"].get(ours_name)) if ours else "–"
        rows.append(
            f"| {role} (MB): `{ours_name}` / `{peer_name}` | {ours_cell} | "
            f"{_mb(peer_sizes[i])} | {ratio(role)} |"
        )
    ours_total = sum(ours["sizes"].values()) if ours else None
    rows.append(f"| total (MB) | {_mb(ours_total)} | {_mb(sum(peer_sizes))} | {ratio('total')} |")
    rows.append(
        f"| packages installed | {ours.get('packages', '–') if ours else '–'} | "
        f"{lb.get('packages') or '–'} | |"
    )
    stages = ", ".join(f"{name} {s:.1f} s" for name, s in lb.get("stages", {}).items())
    versions = ", ".join(f"{k} {v}" for k, v in part.get("versions", {}).items() if v)
    met = ""
    if "seconds" in r:
        verdict = "met" if r["seconds"] >= GOAL_RATIO else "not met"
        met = f" Measured: {r['seconds']:.2f}×, {verdict}."
    boot = lb.get("boot_bytes_in_squashfs")
    runs = lb.get("initramfs_runs")
    notes = [
        "Same: suite, archive areas, minbase bootstrap, no recommends, the package set, the"
        " kernel flavour, live-boot in the initramfs, squashfs with zstd at the same level"
        " and block size (bookworm's mksquashfs: the host's for livestrap; for live-build"
        " one it installs into its chroot and removes again, its default), every download"
        " from the same mirror, a cold package cache on both sides.",
        "Size: livestrap leaves documentation, man pages, locales, unused kernel module"
        " trees (graphics, sound, wireless, ...) and udev's hwdb sources out at unpack time,"
        " and its initramfs is `MODULES=netboot` without storage drivers; live-build"
        " installs every file and makes a `MODULES=most` initramfs."
        + (
            f" Its filesystem.squashfs also carries /boot ({boot / MB:.0f} MB uncompressed:"
            " the kernel and initrd a second time)."
            if boot
            else ""
        ),
        "Time: "
        + (
            f"live-build made the initramfs {runs} times (kernel postinst, triggers, its own"
            " final update), livestrap once. "
            if runs
            else ""
        )
        + "live-build bootstraps with debootstrap, then installs the list with apt in a"
        " second pass; livestrap does both in one mmdebstrap run. live-build runs"
        " mksquashfs under `nice -n 17`, which matters only when other work competes for"
        " the cores. It also saves its bootstrap stage and package cache (its defaults), as"
        " livestrap fills its own package cache.",
        load_note(lb, ours),
        "live-build ran in a private mount namespace (`unshare --mount`) only so that its"
        " chroot mounts cannot outlive it; that costs nothing measurable.",
        *boot_note(part),
        "Neither image has a bootloader: livestrap's nodes boot through the master's iPXE.",
    ]
    package_list = ", ".join(part.get("package_list", []))
    intro = intro_text(COMMAND, versions, paired=paired(part))
    inputs = (
        f"The kernel comes from `--linux-flavours` ({part.get('kernel', '?')}); the rest of"
        " livestrap's default package set is `config/package-lists/livestrap.list.chroot`"
        f" ({package_list}) in place of lb's default list (which adds live-config); the"
        " agent .deb, built from this repository, is a local package in"
        " `config/packages.chroot`."
    )
    return [
        "## Peer: Debian live-build",
        "",
        machine_line(part.get("machine")),
        *textwrap.wrap(intro, WIDTH, break_on_hyphens=False),
        "",
        "```sh",
        *part["commands"],
        "```",
        "",
        *textwrap.wrap(inputs, WIDTH, break_on_hyphens=False),
        "",
        *rows,
        "",
        *stage_lines(ours, stages),
        f"Goal: livestrap's cold build at least {GOAL_RATIO:.0f}× faster than live-build's.{met}",
        "",
        *render_boot(part.get("boot")),
        *([""] if part.get("boot") else []),
        "Differences between the two images and builds, so the ratios are read fairly:",
        "",
        *[
            line
            for note in notes
            for line in textwrap.wrap(
                note, WIDTH, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False
            )
        ],
        "",
    ]


if __name__ == "__main__":
    main()
