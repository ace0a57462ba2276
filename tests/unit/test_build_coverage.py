"""The coverage record a build makes (builder.coverage, store.coverage, modinfo): read
from a root tree of the real fixture modules, stored small in metadata.yaml, and read
back from hostile metadata as strictly as the rest of it."""

from __future__ import annotations

import lzma
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from driverkit import FIXTURES, KVER, elf_module, fake_root, fixture_coverage
from livestrap.builder import coverage
from livestrap.modinfo import ModinfoError, firmware_names, modinfo_fields
from livestrap.store.coverage import (
    DriverCoverage,
    ModuleRecord,
    decode_patterns,
    encode_patterns,
)
from livestrap.store.manifest import dump_metadata, parse_metadata
from livestrap.yamlfile import PlainDumper

pytestmark = pytest.mark.unit

ICE_FW = "intel/ice/ddp/ice.pkg"


def test_modinfo_of_the_real_module() -> None:
    data = lzma.decompress((FIXTURES / "rp2.ko.xz").read_bytes())
    assert firmware_names(data) == ["rp2.fw"]
    fields = dict(modinfo_fields(data))
    assert fields["license"] == "GPL v2" and fields["name"] == "rp2"


@pytest.mark.parametrize("is64", [True, False])
def test_modinfo_of_a_written_module(is64: bool, tmp_path: Path) -> None:
    data = elf_module(["license=GPL", "firmware=a/b.fw", "firmware=c.bin", "firmware=a/b.fw"],
                      is64=is64)  # fmt: skip
    assert firmware_names(data) == ["a/b.fw", "c.bin"]
    if shutil.which("modinfo") or Path("/sbin/modinfo").exists():  # kmod reads it alike
        (tmp_path / "m.ko").write_bytes(data)
        tool = shutil.which("modinfo") or "/sbin/modinfo"
        out = subprocess.run([tool, "-F", "firmware", str(tmp_path / "m.ko")],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert out.split() == ["a/b.fw", "c.bin", "a/b.fw"]


@pytest.mark.parametrize(
    "data",
    [b"", b"\x7fELF", b"MZ" + b"\0" * 100, elf_module([])[:70], b"\x7fELF\x03\x01" + b"\0" * 80],
)
def test_modinfo_refuses_what_is_not_a_module(data: bytes) -> None:
    with pytest.raises(ModinfoError):
        firmware_names(data)


def test_modinfo_refuses_a_section_past_the_end() -> None:
    data = bytearray(elf_module(["firmware=x"]))
    shoff = int.from_bytes(data[0x28:0x30], "little")
    size_at = shoff + 64 + 32  # second section header's sh_size
    data[size_at : size_at + 8] = (1 << 40).to_bytes(8, "little")
    with pytest.raises(ModinfoError, match="past the end"):
        firmware_names(bytes(data))


def firmware() -> dict[str, bytes]:
    return {
        ICE_FW: b"ddp",  # E810's DDP package, present
        "bnx2x/bnx2x-e2-7.13.21.0.fw.xz": b"fw",  # a compressed variant counts
        "bnx2x/bnx2x-e1h-7.13.21.0.fw": b"->bnx2x-e1h-7.13.15.0.fw",  # a link to a missing one
        "bnx2x/bnx2x-e1-7.13.21.0.fw": b"->/usr/lib/firmware/bnx2x/real.fw",
        "bnx2x/real.fw": b"fw",
        "rp2.fw": b"->/etc/passwd",  # out of the tree: never followed on the host
    }


@pytest.mark.parametrize("merged", [True, False])
def test_read_coverage_of_a_tree(tmp_path: Path, merged: bool) -> None:
    root = fake_root(tmp_path / "root", firmware(), merged=merged)
    record, problems = coverage.read_coverage(root, KVER)
    assert problems == []
    assert list(record.modules) == sorted(["ixgbe", "ice", "mlx5_core", "bnx2x", "nvme",
                                           "ahci", "rp2"])  # fmt: skip
    mods = record.modules
    assert mods["ice"].firmware_complete and mods["ice"].base_class == 2
    assert mods["ixgbe"].firmware_complete and mods["ixgbe"].missing_firmware == []
    assert mods["nvme"].base_class == 1 and mods["rp2"].base_class is None
    assert not mods["bnx2x"].firmware_complete
    assert mods["bnx2x"].missing_firmware == [
        "bnx2x/bnx2x-e2-7.13.15.0.fw", "bnx2x/bnx2x-e1h-7.13.15.0.fw",
        "bnx2x/bnx2x-e1-7.13.15.0.fw", "bnx2x/bnx2x-e1h-7.13.21.0.fw",
    ]  # fmt: skip
    assert mods["rp2"].missing_firmware == ["rp2.fw"]  # read from the real .ko.xz
    # the record holds every pattern of the real modules.alias lines
    assert [m.patterns for m in record.module_coverage()] == [
        m.patterns for m in sorted(fixture_coverage().module_coverage(), key=lambda m: m.name)
    ]
    line = coverage.summary_line(record)
    assert line == (
        "7 PCI modules (534 patterns); network 4, storage 2; firmware incomplete: 2 (bnx2x, rp2)"
    )


def test_a_module_file_gone_is_a_problem_not_a_failure(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "root", {})
    ice = next((root / "usr/lib/modules" / KVER).rglob("ice.ko"))
    ice.unlink()
    nvme = next((root / "usr/lib/modules" / KVER).rglob("nvme.ko"))
    nvme.write_bytes(b"not elf")
    ahci = next((root / "usr/lib/modules" / KVER).rglob("ahci.ko"))
    ahci.rename(ahci.with_name("ahci.ko.zst"))
    dep = root / "usr/lib/modules" / KVER / "modules.dep"
    dep.write_text(dep.read_text().replace("ahci.ko:", "ahci.ko.zst:"))
    record, problems = coverage.read_coverage(root, KVER)
    assert "ice" not in record.modules
    assert problems == [
        "ice: in modules.alias, but no module file",
        "nvme: not an ELF file",
        "ahci: zstd-compressed module: its firmware names are not read",
    ]
    assert "ahci" in record.modules  # its patterns still count
    assert record.modules["nvme"].firmware_complete  # it names none that can be read


def test_firmware_wildcards() -> None:
    files = {"qcom/a/x.mbn", "ice.pkg.zst"}
    assert coverage.present("qcom/a/*", files, {})
    assert not coverage.present("qcom/b/*", files, {})
    assert coverage.present("ice.pkg", files, {})


def test_pattern_encoding_groups_vendors() -> None:
    patterns = decode_patterns("8086:10fb,1508 *:*:*:*:01:08:02 15b3:1017")
    assert encode_patterns(patterns) == "8086:10fb,1508 *:*:*:*:01:08:02 15b3:1017"
    with pytest.raises(ValueError):
        decode_patterns("8086:10fb,zzzz")
    with pytest.raises(ValueError):
        decode_patterns("")


def test_record_in_metadata_round_trip_and_size(tmp_path: Path) -> None:
    from store_helpers import artifact_bytes, make_metadata

    meta = make_metadata("img-1", artifact_bytes("img-1"))
    meta.driver_coverage = fixture_coverage()
    text = dump_metadata(meta)
    back = parse_metadata(text)
    assert back.driver_coverage == meta.driver_coverage
    section = yaml.dump({"driver_coverage": meta.driver_coverage.model_dump(mode="json")},
                        Dumper=PlainDumper, sort_keys=False)  # fmt: skip
    # 7 modules, 534 patterns: ~3 KB (the default image's 327 modules: ~65 KB)
    assert len(section) < 4000
    # defaults are left out: a module without firmware trouble is pci and class only
    assert "ixgbe:\n      pci: 8086:" in section
    assert "ixgbe" not in section.split("missing_firmware")[0].split("bnx2x:")[-1]
    old = parse_metadata(dump_metadata(make_metadata("img-2", artifact_bytes("img-2"))))
    assert old.driver_coverage is None  # built before: still valid


@pytest.mark.parametrize(
    "record",
    [
        {"pci": "8086:10fb; rm"},
        {"pci": ""},
        {"pci": "8086:10fb", "missing_firmware": ["../../etc/shadow"], "firmware_complete": False},
        {"pci": "8086:10fb", "missing_firmware": ["a\nb"], "firmware_complete": False},
        {"pci": "8086:10fb", "firmware_complete": False},  # incomplete, yet nothing missing
        {"pci": "8086:10fb", "missing_firmware": ["a.fw"]},  # complete, yet one missing
        {"pci": "8086:10fb", "base_class": 256},
        {"pci": "8086:10fb", "extra": 1},
        {"pci": " ".join(["8086:10fb"] * 5000)},
    ],
)
def test_hostile_records_refused(record: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ModuleRecord.model_validate(record)


def test_hostile_module_names_refused() -> None:
    with pytest.raises(ValueError):
        DriverCoverage.model_validate({"modules": {"../x": {"pci": "8086:10fb"}}})


# --- the metadata stage records it ---------------------------------------------------


def build_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_modules: bool) -> object:
    from store_helpers import write_image_dir

    from livestrap.builder import pipeline
    from livestrap.builder.pipeline import BuildContext, build
    from livestrap.resolve import resolve
    from livestrap.spec import BuildSpec
    from livestrap.store.images import ImageStore

    monkeypatch.setattr(pipeline, "query", lambda argv, **_: ["bash\t5.2\tii "])
    key = Path(__file__).resolve().parents[1] / "fixtures/keys/archive-test.asc"
    spec = resolve(
        BuildSpec(label="fake", mirror="http://deb.example/debian", mirror_key=key),
        environ={},
        apt_root=Path("/nonexistent-livestrap-apt-root"),
    )  # fmt: skip

    def image(ctx: BuildContext) -> None:  # what rootfs, bootfiles and squashfs leave
        write_image_dir(ctx.workdir, "unused", dirname=ctx.out.name)
        (ctx.out / "metadata.yaml").unlink()
        ctx.kernel_version = KVER
        if with_modules:
            fake_root(ctx.rootfs, firmware())
        else:
            ctx.rootfs.mkdir()

    stages = [
        ("prepare", lambda ctx: None),
        ("image", image),
        ("metadata", pipeline.stage_metadata),
        ("commit", pipeline.stage_commit),
    ]
    store = ImageStore(tmp_path / "data")
    meta = build(spec, store, log_path=tmp_path / "build.log", stages=stages)
    return store.get(meta.id)


def test_the_metadata_stage_records_coverage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = build_fake(tmp_path, monkeypatch, with_modules=True)
    record = meta.driver_coverage  # type: ignore[attr-defined]
    assert record is not None and record.modules["ice"].firmware_complete
    log = (tmp_path / "build.log").read_text()
    assert "drivers: 7 PCI modules (534 patterns); network 4, storage 2; " in log


def test_a_tree_without_modules_alias_records_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = build_fake(tmp_path, monkeypatch, with_modules=False)
    assert meta.driver_coverage is None  # type: ignore[attr-defined]
    assert "PCI coverage not recorded" in (tmp_path / "build.log").read_text()


def test_metadata_loads_alike_through_libyaml() -> None:
    """parse_metadata's libyaml path gives load_plain_yaml's values and refusals."""
    import yaml as pyyaml
    from store_helpers import artifact_bytes, make_metadata

    from livestrap.yamlfile import load_plain_yaml, load_plain_yaml_fast

    meta = make_metadata("img-1", artifact_bytes("img-1"))
    meta.driver_coverage = fixture_coverage()
    odd = "a: yes\nb: 0o17\nc: 2024-05-01\nd: 1e3\ne: ~\nf: '012'\ng: [1, {h: .inf}]\n"
    for text in (dump_metadata(meta), odd):
        assert load_plain_yaml_fast(text) == load_plain_yaml(text)
    for bomb in ("a: &x [1]\nb: *x\n", "a: &x 1\n"):
        with pytest.raises(pyyaml.YAMLError, match="anchors and aliases"):
            load_plain_yaml_fast(bomb)
