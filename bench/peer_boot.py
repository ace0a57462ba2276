"""The peer section's paired run: livestrap's cold build (measured as the build section
measures one: a fresh data dir, an empty package cache, the build lock), then the boots.

live-build's image and livestrap's are both served as images of
one private data dir by one master, booted through the same iPXE path, alternating
(livestrap, live-build, livestrap, ...), so that whatever else loads the machine weighs
on both alike. Under TCG absolute seconds move with the host; the paired ratio is the
figure that carries over.

live-build's vmlinuz / initrd.img / filesystem.squashfs become an image's vmlinuz /
initrd.img / root.squashfs, with metadata copied from livestrap's image (same spec, same
kernel options, so the master renders the same script for both) apart from the id, the
builder, the kernel version, the packages and the checksums.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from boot_bench import PHASES, boot_once, median_run, split
from build_bench import timed_build

from livestrap.builder.plan import BuildPlan
from livestrap.netboot.qemu import NodeSpec
from livestrap.spec import BuildSpec, ResolvedSpec
from livestrap.store.images import ImageStore
from livestrap.store.manifest import METADATA, describe_artifacts, dump_metadata
from masterproc import master_process

SIDES = ("livestrap", "live_build")
LB_IMAGE_ID = "live-build"
BOOT_TIMEOUT_S = 300  # a TCG boot takes ~40-90 s here; anything past this is stuck
FIRMWARE = "bios"
WIDTH = 88  # the page's line length
# livestrap's artifact name for each of live-build's files in binary/live
LB_FILES = (("vmlinuz", "vmlinuz-*"), ("initrd.img", "initrd.img-*"),
            ("root.squashfs", "filesystem.squashfs"))  # fmt: skip


# What live-build is configured to make (peer_bench.lb_config_argv: --security false,
# --updates false): livestrap's default spec without the security and -updates suites it
# takes from the host's APT sources, so both images hold the same packages.
PEER_SPEC = BuildSpec(security=False)


def peer_spec(plan: BuildPlan) -> ResolvedSpec:
    """The default spec, resolved, with the distro's main suite only."""
    spec = plan.resolve(PEER_SPEC)
    return spec.model_copy(update={"suites": [spec.suite]})


def livestrap_cold(store: ImageStore, cache: Path, log: Path) -> dict[str, Any]:
    """livestrap's default image from an empty package cache into `store` (the agent is
    published to the data dir's repository before the clock starts, as in build_bench)."""
    spec = peer_spec(BuildPlan(store.data_dir))
    load = round(os.getloadavg()[0], 2)
    return {**timed_build(spec, store, cache, log), "load_1min": load}


def chroot_packages(chroot: Path) -> dict[str, str]:
    """Installed packages and versions of live-build's chroot, as metadata lists them."""
    out = subprocess.run(
        ["dpkg-query", f"--admindir={chroot}/var/lib/dpkg", "-W",
         "-f=${Package}\t${Version}\t${db:Status-Abbrev}\n"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = (line.split("\t") for line in out.stdout.splitlines() if line.count("\t") == 2)
    return {name: version for name, version, status in sorted(rows) if status.startswith("ii")}


def import_lb_image(store: ImageStore, like_id: str, live: Path, chroot: Path, builder: str) -> str:
    """live-build's netboot files as an image of `store`, beside livestrap's `like_id`."""
    like = store.get(like_id)
    staging = store.new_staging_dir("peer")
    kernel = ""
    for name, pattern in LB_FILES:
        (found,) = sorted(live.glob(pattern))
        shutil.copyfile(found, staging / name)
        if name == "vmlinuz":
            kernel = found.name.removeprefix("vmlinuz-")
    packages = chroot_packages(chroot)
    meta = like.model_copy(
        update={
            "id": LB_IMAGE_ID,
            "label": LB_IMAGE_ID,
            "builder": builder,
            "kernel_version": kernel,
            "inputs_sha256": None,
            "agent_version": packages.get("livestrap-agent"),
            "packages": packages,
            "artifacts": describe_artifacts(staging),
        }
    )
    (staging / METADATA).write_text(dump_metadata(meta))
    store.commit(staging, LB_IMAGE_ID)
    return LB_IMAGE_ID


def paired_boots(
    master: Any, store: ImageStore, images: dict[str, str], work: Path, runs: int
) -> list[dict[str, Any]]:
    """`runs` boots of each image, alternating; the master serves whichever is active.
    Each run notes the image the node registered with (it must be the one served)."""
    out: list[dict[str, Any]] = []
    for i in range(runs):
        for side in SIDES:
            store.activate(images[side])
            name = f"peer-{side.replace('_', '')}-{i}"
            run = boot_once(master, work, name, BOOT_TIMEOUT_S, firmware=FIRMWARE)
            with master.admin() as client:
                mac = NodeSpec(name=name).mac(0)
                found = client.get("/api/v1/nodes", params={"mac": mac}).json()
            run = {"side": side, "image": found[0].get("image_id") if found else None, **run}
            if run["registered_s"] is not None and run["image"] != images[side]:
                run = {**run, "registered_s": None, "reason": f"registered with {run['image']}"}
            print(f"boot {side} {i}: {run['registered_s'] or run.get('reason')}", flush=True)
            out.append(run)
    return out


def boot_both(
    store: ImageStore, images: dict[str, str], run_dir: Path, runs: int
) -> list[dict[str, Any]]:
    """One master on the private data dir (SQLite in `run_dir`), booting both images."""
    db = f"sqlite:///{run_dir / 'boot.sqlite'}"
    (run_dir / "vms").mkdir(exist_ok=True)
    with master_process(store.data_dir, fake_builds=False, database_url=db) as master:
        return paired_boots(master, store, images, run_dir / "vms", runs)


def boot_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per side: every boot's seconds and their median; the ratio live-build / livestrap
    of the medians, and of each pair (the boots made one after the other)."""
    times = {side: [r["registered_s"] for r in runs if r["side"] == side] for side in SIDES}
    done = {side: [s for s in v if s is not None] for side, v in times.items()}
    median = {side: round(statistics.median(v), 1) if v else None for side, v in done.items()}
    ours, lb = median["livestrap"], median["live_build"]
    pairs = [
        round(b / a, 2) if a and b else None
        for a, b in zip(times["livestrap"], times["live_build"], strict=False)
    ]
    reasons = sorted({r["reason"] for r in runs if r["registered_s"] is None and "reason" in r})
    medians = {side: median_run([r for r in runs if r["side"] == side]) for side in SIDES}
    return {
        "firmware": FIRMWARE,
        "seconds": times,
        "median": median,
        "ratio": round(lb / ours, 2) if ours and lb else None,
        "pair_ratios": pairs,
        "phases": {side: split(run) for side, run in medians.items()},
        **({"failures": reasons} if reasons else {}),
    }


def _s(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def render_boot(boot: dict[str, Any] | None) -> list[str]:
    """The boot rows of the peer section (empty when the run had no boots)."""
    if not boot:
        return []
    n = len(boot["seconds"]["livestrap"])
    ratio = boot.get("ratio")
    pairs = ", ".join("–" if p is None else f"{p:.2f}" for p in boot.get("pair_ratios", []))
    cells = {side: ", ".join(_s(v) for v in boot["seconds"][side]) for side in SIDES}
    intro = (
        f"Boot: power-on → registered, {boot['firmware'].upper()}, {n} boots of each image"
        " in one run, alternating (livestrap first), through the same master and iPXE"
        " script (s):"
    )
    lines = [
        *textwrap.wrap(intro, WIDTH, break_on_hyphens=False),
        "",
        "| | livestrap | live-build | live-build / livestrap |",
        "|---|---|---|---|",
        f"| median | {_s(boot['median']['livestrap'])} | {_s(boot['median']['live_build'])} |"
        f" **{'–' if ratio is None else f'{ratio:.2f}×'}** |",
        f"| every boot | {cells['livestrap']} | {cells['live_build']} | pairs: {pairs} |",
    ]
    for key, label, _ in PHASES if boot.get("phases") else ():
        ours, lb = (boot["phases"][side].get(key) for side in SIDES)
        share = f"{lb / ours:.2f}×" if ours and lb else "–"
        lines.append(f"| {label} (median boot) | {_s(ours)} | {_s(lb)} | {share} |")
    if boot.get("failures"):
        lines += ["", f"Boots that did not register: {'; '.join(boot['failures'])}."]
    return lines


def paired(part: dict[str, Any]) -> bool:
    """Figures from one paired run (both cold builds in it), not from before."""
    return "load_1min" in part["live_build"]


def intro_text(command: str, versions: str, *, paired: bool) -> str:
    if not paired:  # the livestrap column came from the build section
        return (
            f"Reproduce: `{command}` (as root; after the build section, whose cold build is the"
            f" livestrap column). live-build ({versions}) makes the same image from the same"
            " host mirror in a fresh work dir (its own cache empty), holding the same build"
            " lock:"
        )
    return (
        f"Reproduce: `{command}` (as root). One run makes livestrap's default image cold (a"
        " fresh data dir, an empty package cache), then live-build"
        f" ({versions}) makes the same image from the same host mirror in a fresh work dir"
        " (its own cache empty), each holding the same build lock; then both images boot"
        " from one master. live-build's commands:"
    )


def stage_lines(ours: dict[str, Any] | None, lb_stages: str) -> list[str]:
    """live-build's stages, after livestrap's (those over 0.1 s) when the run has them."""
    out = [f"live-build stages: {lb_stages}." if lb_stages else ""]
    if ours and ours.get("stages"):
        mine = ", ".join(f"{k} {s:.1f} s" for k, s in ours["stages"].items() if s >= 0.1)
        out = [f"livestrap stages: {mine}.", *out]
        return textwrap.wrap(" ".join(out), WIDTH, break_on_hyphens=False)
    return out


def boot_note(part: dict[str, Any]) -> list[str]:
    """Why the boots differ, for the section's list of differences (none without boots)."""
    if not part.get("boot"):
        return []
    return [
        "Boot: the master renders one script for both, the same kernel options but the"
        " image id. live-build's image has none of livestrap's boot levers (boot section):"
        " its live-boot probes every interface with six fixed one-second sleeps before its"
        " DHCP, its `MODULES=most` initrd is twice the bytes to fetch and unpack, its"
        " squashfs is 2.5× the bytes to download into RAM and page in, and the units"
        " livestrap masks (apt and e2scrub timers, e2scrub_reap, getty-static) start beside"
        " the agent. The agent .deb is the same file in both; its postinst enables the unit"
        " (deb-systemd-helper) in live-build's chroot too, so the node registers with no"
        " change to live-build's config, but live-build's default hook"
        " `9010-remove-python-pyc` then deletes every `*.pyc` (the agent's and the standard"
        " library's), so Python compiles what the agent imports at every boot.",
    ]


def load_note(lb: dict[str, Any], ours: dict[str, Any] | None) -> str:
    """What else ran while the two builds did, as the run measured it."""
    ours_load = ours.get("load_1min") if ours else None
    if "load_1min" not in lb:  # the livestrap column came from the build section
        return (
            "Load: the livestrap column is the build section's cold build; `make bench` measures"
            " it earlier in the same run, with other benchmarks in between, not beside this one;"
            " both ran with other work on this 2-core machine"
            + (f" (load average {ours_load} when livestrap's was saved)" if ours_load else "")
            + ", and on 2 cores the time ratio moves with that load: compare the stage times"
            " of both sections before reading much into it."
        )
    return (
        "Load: both cold builds ran in this one run, livestrap's right before live-build's,"
        " so the two columns share the machine's state; other work still ran on the 2 cores"
        f" (load average {ours_load} as livestrap's build started, {lb['load_1min']} as"
        " live-build's did), and on 2 cores the time ratio moves with that load. The boots"
        " alternate for the same reason: a busy minute slows one boot of each image, not"
        " every boot of one."
    )
