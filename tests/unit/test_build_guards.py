"""builder.guards: the RAM formula, the limits, the failure message; the guards stage in
the pipeline (fake stages, commands answered by hand); the spec fields."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import yaml
from store_helpers import write_image_dir
from typer.testing import CliRunner

from livestrap.builder import guards, pipeline
from livestrap.builder.guards import MIB, BootRam
from livestrap.builder.pipeline import BuildContext, build
from livestrap.cli import app
from livestrap.errors import BuildError, SpecError
from livestrap.master.services.images import image_detail
from livestrap.resolve import resolve
from livestrap.spec import DEFAULT_MAX_IMAGE_MB, DEFAULT_MIN_BOOT_RAM_MB, BuildSpec, parse_spec
from livestrap.store.images import ImageStore
from livestrap.store.manifest import METADATA

pytestmark = pytest.mark.unit

ARCHIVE_KEY = Path(__file__).resolve().parents[1] / "fixtures/keys/archive-test.asc"
LISTING = [
    "drwxr-xr-x   7 root     root            0 Dec  2 00:38 .",
    "lrwxrwxrwx   1 root     root            7 Dec  2 00:38 bin -> usr/bin",
    "-rw-r--r--   1 root     root           16 Dec  2 00:38 conf/arch.conf",
    "-rwxr-xr-x   1 root     root         8193 Dec  2 00:38 usr/bin/busybox",
]


def bzimage_header(init_size: int, version: int = 0x020F) -> bytes:
    header = bytearray(guards.HEADER_BYTES)
    header[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", header, 0x206, version)
    struct.pack_into("<I", header, 0x260, init_size)
    return bytes(header)


def test_kernel_term_is_init_size_else_the_file() -> None:
    assert guards.kernel_ram(bzimage_header(64 * MIB), 8 * MIB) == 64 * MIB
    assert guards.kernel_ram(bzimage_header(64 * MIB, version=0x0209), 8 * MIB) == 8 * MIB
    assert guards.kernel_ram(b"not a kernel", 4096) == 4096


def test_initramfs_term_counts_files_in_whole_pages() -> None:
    assert guards.initramfs_ram(LISTING) == 4096 + 3 * 4096
    assert guards.initramfs_ram(["garbage", ""]) == 0


def test_formula_as_measured_on_the_default_image() -> None:
    """The terms of the default image (guards' docstring): 207 MiB + the margin."""
    ram = BootRam(kernel=66_678_784, initramfs=73_605_120, squashfs=76_070_912)
    assert ram.mib == 207 + guards.MARGIN_MIB == 271
    assert ram.describe() == (
        "a node needs 271 MiB of RAM to boot it: kernel 63.6 MiB + initramfs unpacked "
        "70.2 MiB + squashfs in RAM 72.5 MiB + margin 64 MiB"
    )
    assert guards.over_limits(ram, DEFAULT_MAX_IMAGE_MB, DEFAULT_MIN_BOOT_RAM_MB) == []


def test_each_limit_broken_is_named() -> None:
    ram = BootRam(kernel=10 * MIB, initramfs=20 * MIB, squashfs=300 * MIB, margin_mib=10)
    assert guards.over_limits(ram, 300, 340) == []
    assert guards.over_limits(ram, 299, 339) == [
        "root.squashfs is 300.0 MiB, more than max_image_mb (299 MiB)",
        "a node needs 340 MiB of RAM to boot it: kernel 10.0 MiB + initramfs unpacked 20.0 MiB"
        " + squashfs in RAM 300.0 MiB + margin 10 MiB: more than min_boot_ram_mb (339 MiB),"
        " the RAM of the smallest node it must boot",
    ]


def test_failure_message_names_the_largest_packages_and_module_trees() -> None:
    packages = guards.package_sizes(["10240\tbig", "2048\tsmall", "\tvirtual", "5120\tmid"])
    assert packages == {"big": 10 * MIB, "small": 2 * MIB, "virtual": 0, "mid": 5 * MIB}
    trees = {"kernel/drivers": 40 * MIB, "kernel/fs": 8 * MIB}
    assert guards.failure_message(["too big"], packages, trees) == (
        "too big\n"
        "largest packages (installed): big 10.0 MiB, mid 5.0 MiB, small 2.0 MiB, virtual 0.0 MiB\n"
        "largest module trees: kernel/drivers 40.0 MiB, kernel/fs 8.0 MiB\n"
        "drop packages or module trees, or raise the limits in the spec"
    )
    many = {f"p{i}": i for i in range(10)}
    assert guards.largest(many) == ", ".join(f"p{i} {i / MIB:.1f} MiB" for i in range(9, 4, -1))
    assert guards.largest({}) == "none found"


def test_module_tree_sizes(tmp_path: Path) -> None:
    base = tmp_path / "usr/lib/modules/6.1.0-9-amd64/kernel"
    (base / "drivers/net").mkdir(parents=True)
    (base / "drivers/net/e1000.ko").write_bytes(b"x" * 3000)
    (base / "drivers/a.ko").write_bytes(b"x" * 1000)
    (base / "fs").mkdir()
    (base / "fs/ext4.ko").write_bytes(b"x" * 500)
    (base / "link").symlink_to(base / "fs")
    assert guards.module_tree_sizes(tmp_path, "6.1.0-9-amd64") == {
        "kernel/drivers": 4000,
        "kernel/fs": 500,
    }
    assert guards.module_tree_sizes(tmp_path, "none") == {}


# --- the stage in the pipeline -------------------------------------------------------


def answers(argv: list[str], **_: object) -> list[str]:
    """What lsinitramfs and dpkg-query say about the fake image."""
    if argv[0] == "lsinitramfs":
        return LISTING
    if any("Installed-Size" in a for a in argv):
        return ["20480\tfirmware-big", "1024\tbash"]
    return ["bash\t5.2\tii ", "livestrap-agent\t0.1.0\tii "]


def build_with_guards(tmp_path: Path, store: ImageStore, **limits: int) -> object:
    spec = resolve(
        BuildSpec(
            label="fake", mirror="http://deb.example/debian", mirror_key=ARCHIVE_KEY, **limits
        ),
        environ={},
        apt_root=Path("/nonexistent-livestrap-apt-root"),
    )

    def image(ctx: BuildContext) -> None:  # what bootfiles and squashfs leave
        write_image_dir(ctx.workdir, "unused", dirname=ctx.out.name)
        (ctx.out / "metadata.yaml").unlink()
        with (ctx.out / "root.squashfs").open("r+b") as fh:
            fh.truncate(3 * MIB)  # sparse
        ctx.kernel_version = "6.1.0-9-amd64"
        drivers = ctx.rootfs / "usr/lib/modules/6.1.0-9-amd64/kernel/drivers"
        drivers.mkdir(parents=True)
        (drivers / "x.ko").write_bytes(b"x" * MIB)

    stages = [
        ("prepare", lambda ctx: None),
        ("image", image),
        ("guards", pipeline.stage_guards),
        ("metadata", pipeline.stage_metadata),
        ("commit", pipeline.stage_commit),
    ]
    return build(spec, store, log_path=tmp_path / "build.log", stages=stages)


def test_the_stage_records_the_ram_a_node_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "query", answers)
    store = ImageStore(tmp_path / "data")
    meta = build_with_guards(tmp_path, store)
    # 3 MiB squashfs + 16 KiB initramfs + a few bytes of vmlinuz: 4 MiB, + the margin
    assert store.get(meta.id).boot_ram_mb == 4 + guards.MARGIN_MIB  # type: ignore[attr-defined]
    assert "a node needs 68 MiB of RAM" in (tmp_path / "build.log").read_text()


@pytest.mark.parametrize(
    ("limits", "broken"),
    [({"max_image_mb": 2}, "more than max_image_mb (2 MiB)"),
     ({"min_boot_ram_mb": 67}, "more than min_boot_ram_mb (67 MiB)")],
)  # fmt: skip
def test_over_a_limit_the_build_fails_and_commits_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limits: dict[str, int], broken: str
) -> None:
    monkeypatch.setattr(pipeline, "query", answers)
    store = ImageStore(tmp_path / "data")
    with pytest.raises(BuildError) as failed:
        build_with_guards(tmp_path, store, **limits)
    assert failed.value.stage == "guards"
    message = str(failed.value)
    assert broken in message
    assert "largest packages (installed): firmware-big 20.0 MiB, bash 1.0 MiB" in message
    assert "largest module trees: kernel/drivers 1.0 MiB" in message
    assert store.list() == []


# --- the spec fields -----------------------------------------------------------------


def test_spec_defaults() -> None:
    spec = parse_spec({})
    assert (spec.max_image_mb, spec.min_boot_ram_mb) == (512, 1024)


@pytest.mark.parametrize(
    ("data", "line"),
    [({"max_image_mb": 0}, "max_image_mb: Input should be greater than or equal to 1"),
     ({"min_boot_ram_mb": -5}, "min_boot_ram_mb: Input should be greater than or equal to 1"),
     ({"min_boot_ram_mb": "lots"}, "min_boot_ram_mb: Input should be a valid integer"),
     ({"max_image_mb": True}, "max_image_mb: Input should be a valid integer"),
     ({"max_image_mb": "512"}, "max_image_mb: Input should be a valid integer")],
)  # fmt: skip
def test_spec_fields_are_checked_and_named(data: dict[str, object], line: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert f"  {line}" in str(err.value)


# --- where the figure shows -----------------------------------------------------------


def test_images_show_prints_the_ram_a_node_needs(tmp_path: Path) -> None:
    """And metadata written before the guards (no boot_ram_mb) still loads: null."""
    store = ImageStore(tmp_path / "data")
    write_image_dir(store.images_dir, "old-1")
    path = store.images_dir / "new-1"
    write_image_dir(store.images_dir, "new-1")
    text = (path / METADATA).read_text()
    (path / METADATA).write_text(text.replace("packages:", "boot_ram_mb: 271\npackages:", 1))
    data = ["--data-dir", str(store.data_dir)]
    runner = CliRunner()
    for image_id, mib in (("new-1", 271), ("old-1", None)):
        result = runner.invoke(app, ["images", "show", image_id, *data])
        assert result.exit_code == 0, result.output
        assert yaml.safe_load(result.stdout)["boot_ram_mb"] == mib
        assert image_detail(store.get(image_id), None).boot_ram_mb == mib
