"""Pruning lib/firmware to what the kept modules declare, on a fake tree: the modules'
`.modinfo` read from (fake) ELF files, links kept with what they lead to, licence and
unpackaged files kept, empty folders gone, and the per-package record."""

from __future__ import annotations

import lzma
import struct
from pathlib import Path

import pytest

from livestrap.builder import firmware, kmodinfo

pytestmark = pytest.mark.unit

KVER = "6.1.0-57-amd64"


def elf_module(fields: list[str]) -> bytes:
    """A minimal ELF64 relocatable with a .modinfo section of NUL-terminated fields."""
    modinfo = b"".join(f.encode() + b"\0" for f in fields)
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    header_size, entry_size = 64, 64
    modinfo_at = header_size
    shstrtab_at = modinfo_at + len(modinfo)
    shoff = shstrtab_at + len(shstrtab)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0,
                                 entry_size, 3, 2)  # fmt: skip
    null = bytes(entry_size)
    info = struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, modinfo_at, len(modinfo), 0, 0, 1, 0)
    names = struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, shstrtab_at, len(shstrtab), 0, 0, 1, 0)
    return header + modinfo + shstrtab + null + info + names


def write(path: Path, data: bytes = b"fw") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


# --- reading what modules declare -----------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"not an elf at all" * 4, elf_module(["a=b"])[:70]])
def test_a_broken_module_stops_the_scan(tmp_path: Path, data: bytes) -> None:
    write(tmp_path / "kernel/x.ko", data)
    with pytest.raises(kmodinfo.ModuleError):
        kmodinfo.tree_refs(tmp_path)


def test_tree_refs_reads_plain_and_xz_modules_and_builtin_ones(tmp_path: Path) -> None:
    moddir = tmp_path / KVER
    fields = ["license=GPL", "firmware=bnx2x/e2.fw", "alias=pci:v*", "firmware=bnx2x/e2.fw"]
    write(moddir / "kernel/drivers/net/bnx2x.ko", elf_module(fields))
    write(moddir / "kernel/drivers/net/r8169.ko.xz",
          lzma.compress(elf_module(["firmware=rtl_nic/rtl8168h-2.fw"])))  # fmt: skip
    write(moddir / "kernel/drivers/net/dummy.ko", elf_module(["license=GPL"]))
    write(
        moddir / "modules.builtin.modinfo",
        b"e1000e.license=GPL\0tg3.firmware=tigon/tg3.bin\0tg3.firmware=tigon/tg3_tso.bin\0",
    )
    assert kmodinfo.tree_refs(moddir) == {
        "tg3": ["tigon/tg3.bin", "tigon/tg3_tso.bin"],
        "bnx2x": ["bnx2x/e2.fw"],
        "r8169": ["rtl_nic/rtl8168h-2.fw"],
    }
    assert kmodinfo.module_name(Path("snd-hda-intel.ko.xz")) == "snd_hda_intel"


def test_an_unreadable_module_stops_the_scan(tmp_path: Path) -> None:
    write(tmp_path / "kernel/x.ko.xz", b"not xz")
    with pytest.raises(kmodinfo.ModuleError):
        kmodinfo.tree_refs(tmp_path)


# --- pruning ----------------------------------------------------------------------------


@pytest.fixture
def fwdir(tmp_path: Path) -> Path:
    """A firmware folder like the packages leave it (usr/lib/firmware, merged /usr)."""
    fw = tmp_path / "rootfs/usr/lib/firmware"
    write(fw / "bnx2x/bnx2x-e2-7.13.21.0.fw", b"x" * 300)
    write(fw / "bnx2x/bnx2x-e2-7.13.1.0.fw", b"x" * 200)  # no module declares it
    write(fw / "intel/ice/ddp/ice-1.3.30.0.pkg", b"x" * 50)
    link(fw / "intel/ice/ddp/ice.pkg", "ice-1.3.30.0.pkg")
    write(fw / "intel/ice/ddp-comms/ice_comms-1.3.31.0.pkg", b"x" * 40)
    write(fw / "rtlwifi/rtl8192cufw.bin", b"x" * 30)  # its module (wireless) is dropped
    write(fw / "rtl_nic/rtl8168h-2.fw.xz", b"x" * 20)  # compressed: still found
    write(fw / "updates/qed/qed_init.bin", b"x" * 10)  # an update of a declared name
    write(fw / "brcm/brcmfmac43455-sdio.bin", b"x" * 5)  # declared by a glob
    write(fw / "chain/c.bin", b"x" * 7)
    link(fw / "chain/b.bin", "c.bin")
    link(fw / "a.bin", "/lib/firmware/chain/b.bin")  # absolute, inside lib/firmware
    write(fw / "cxgb4-real/t4fw.bin", b"x" * 9)
    link(fw / "cxgb4", "cxgb4-real")  # a linked folder on the way
    link(fw / "outside.bin", "/etc/passwd")  # never followed out
    write(fw / "LICENCE.broadcom_bcm43xx", b"terms")
    write(fw / "site/custom.bin", b"mine")  # no package owns it
    return fw


REFS = {
    "bnx2x": ["bnx2x/bnx2x-e2-7.13.21.0.fw", "bnx2x/bnx2x-e2-7.13.15.0.fw"],
    "ice": ["intel/ice/ddp/ice.pkg"],
    "r8169": ["rtl_nic/rtl8168h-2.fw"],
    "qed": ["qed/qed_init.bin"],
    "brcmfmac": ["brcm/brcmfmac*-sdio.bin"],
    "chainy": ["a.bin"],
    "cxgb4": ["cxgb4/t4fw.bin"],
    "evil": ["outside.bin", "../../etc/shadow"],
}


def test_prune_keeps_what_kept_modules_declare(fwdir: Path) -> None:
    owned = set(firmware._listing(fwdir)) - {"site/custom.bin"}
    pruned = firmware.prune(fwdir, REFS, KVER, owned)
    assert sorted(pruned.kept) == [
        "LICENCE.broadcom_bcm43xx", "a.bin", "bnx2x/bnx2x-e2-7.13.21.0.fw",
        "brcm/brcmfmac43455-sdio.bin", "chain/b.bin", "chain/c.bin", "cxgb4",
        "cxgb4-real/t4fw.bin", "intel/ice/ddp/ice-1.3.30.0.pkg", "intel/ice/ddp/ice.pkg",
        "rtl_nic/rtl8168h-2.fw.xz", "site/custom.bin", "updates/qed/qed_init.bin",
    ]  # fmt: skip
    assert pruned.removed == {
        "bnx2x/bnx2x-e2-7.13.1.0.fw": 200,
        "intel/ice/ddp-comms/ice_comms-1.3.31.0.pkg": 40,
        "outside.bin": 0,
        "rtlwifi/rtl8192cufw.bin": 30,
    }
    assert pruned.kept["intel/ice/ddp/ice.pkg"] == 0  # a link counts no bytes
    assert pruned.users["intel/ice/ddp/ice-1.3.30.0.pkg"] == {"ice"}
    assert pruned.users["chain/c.bin"] == {"chainy"}
    assert not (fwdir / "rtlwifi").exists() and not (fwdir / "intel/ice/ddp-comms").exists()
    assert (fwdir / "intel/ice/ddp/ice.pkg").read_bytes() == b"x" * 50  # the link still leads
    assert (fwdir / "cxgb4/t4fw.bin").is_file()
    assert Path("/etc/passwd").exists()


def test_without_owners_every_undeclared_file_goes(fwdir: Path) -> None:
    pruned = firmware.prune(fwdir, {"bnx2x": ["bnx2x/bnx2x-e2-7.13.21.0.fw"]}, KVER)
    assert sorted(pruned.kept) == ["LICENCE.broadcom_bcm43xx", "bnx2x/bnx2x-e2-7.13.21.0.fw"]
    assert sorted(p.name for p in fwdir.iterdir()) == ["LICENCE.broadcom_bcm43xx", "bnx2x"]


def test_a_link_loop_ends(tmp_path: Path) -> None:
    fw = tmp_path / "fw"
    link(fw / "loop-a", "loop-b")
    link(fw / "loop-b", "loop-a")
    write(fw / "x.bin")
    assert firmware.prune(fw, {"m": ["loop-a"]}, KVER).kept == {}


def test_lookup_names() -> None:
    assert firmware.lookup_names("updates/6.1.0-57-amd64/a/b.fw.zst", KVER) == [
        "updates/6.1.0-57-amd64/a/b.fw", "a/b.fw",
    ]  # fmt: skip
    assert firmware.lookup_names("a.bin", KVER) == ["a.bin"]


def test_the_record_per_package(fwdir: Path) -> None:
    rootfs = fwdir.parents[2]
    info = rootfs / firmware.DPKG_INFO
    bnx2x = ["/.", "/lib", "/lib/firmware", "/lib/firmware/bnx2x",
             "/lib/firmware/bnx2x/bnx2x-e2-7.13.21.0.fw",
             "/lib/firmware/bnx2x/bnx2x-e2-7.13.1.0.fw",
             "/usr/share/doc/firmware-bnx2x/copyright"]  # fmt: skip
    write(info / "firmware-bnx2x.list", "\n".join(bnx2x).encode() + b"\n")
    write(info / "firmware-misc-nonfree.list",
          b"/lib/firmware/intel/ice/ddp/ice-1.3.30.0.pkg\n/lib/firmware/intel/ice/ddp/ice.pkg\n"
          b"/lib/firmware/intel/ice/ddp-comms/ice_comms-1.3.31.0.pkg\n")  # fmt: skip
    assert firmware.package_paths(rootfs, "firmware-bnx2x") == {
        "bnx2x", "bnx2x/bnx2x-e2-7.13.21.0.fw", "bnx2x/bnx2x-e2-7.13.1.0.fw",
    }  # fmt: skip
    pruned = firmware.prune(fwdir, REFS, KVER, firmware.owned_paths(rootfs))
    assert "rtlwifi/rtl8192cufw.bin" in pruned.kept  # no package lists it here: not ours
    found = firmware.coverage(
        rootfs, pruned, {"firmware-bnx2x": "20230210-5", "firmware-misc-nonfree": None}
    )
    assert found == [
        firmware.PackageCoverage("firmware-bnx2x", "20230210-5", ("bnx2x",), 1, 300, 1, 200),
        firmware.PackageCoverage("firmware-misc-nonfree", None, ("ice",), 2, 50, 1, 40),
    ]
    assert found[0].describe() == (
        "firmware firmware-bnx2x 20230210-5: 1 files (0.0 MB) kept for bnx2x; "
        "1 files (0.0 MB) dropped"
    )
    assert found[1].describe().startswith("firmware firmware-misc-nonfree (not installed): ")
    many = firmware.PackageCoverage("p", "1", tuple(f"m{i:02}" for i in range(15)), 1, 0, 0, 0)
    assert "m11 (+3 more);" in many.describe()
    none = firmware.PackageCoverage("p", "1", (), 0, 0, 2, 2_000_000)
    assert (
        none.describe()
        == "firmware p 1: 0 files (0.0 MB) kept for no module; 2 files (2.0 MB) dropped"
    )


def test_firmware_dir_prefers_merged_usr(tmp_path: Path) -> None:
    assert firmware.firmware_dir(tmp_path) is None
    (tmp_path / "usr/lib/firmware").mkdir(parents=True)
    (tmp_path / "lib").symlink_to("usr/lib")
    assert firmware.firmware_dir(tmp_path) == tmp_path / "usr/lib/firmware"
