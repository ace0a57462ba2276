"""The Secure Boot chain's GRUB config, byte for byte, and the command line it shares
with the iPXE path."""

from __future__ import annotations

import pytest

from livestrap.master.ipxe import kernel_arguments
from livestrap.netboot.grub import render_grub_config, render_grub_no_image

pytestmark = pytest.mark.unit

BASE = "http://10.0.0.1:8080"
OCTET = "([0-9a-fA-F][0-9a-fA-F])"
HEADER = (
    "# livestrap: Secure Boot chain shim -> GRUB -> kernel (written by livestrap; it is\n"
    "# rewritten when the active image changes: edit the master's settings, not this file)\n"
    "set timeout=0\n"
)
ARGS = (
    " initrd=initrd.img boot=live"
    " fetch=http://10.0.0.1:8080/boot/m/${livestrap_mac}/images/img-1/root.squashfs"
    " livestrap.url=http://10.0.0.1:8080 livestrap.token=tok-EN_1 livestrap.image=img-1"
    " BOOTIF=01-${livestrap_mac} livestrap.boot=grub console=tty0 console=ttyS0,115200n8"
    " quiet"
)
GRUB_CFG = (
    HEADER
    + "regexp --set=1:m1 --set=2:m2 --set=3:m3 --set=4:m4 --set=5:m5 --set=6:m6 '^"
    + ":".join([OCTET] * 6)
    + '$\' "$net_default_mac"\n'
    'set livestrap_mac="${m1}-${m2}-${m3}-${m4}-${m5}-${m6}"\n'
    'echo "livestrap: booting image img-1 (Secure Boot chain) for $livestrap_mac"\n'
    "if linux (http,10.0.0.1:8080)/boot/m/${livestrap_mac}/images/img-1/vmlinuz" + ARGS + "; then\n"
    "  initrd (http,10.0.0.1:8080)/boot/m/${livestrap_mac}/images/img-1/initrd.img\n"
    "else\n"
    '  echo "livestrap: this GRUB has no HTTP: kernel and initrd over TFTP"\n'
    "  linux /image/img-1/vmlinuz" + ARGS + "\n"
    "  initrd /image/img-1/initrd.img\n"
    "fi\n"
    "boot\n"
    'echo "livestrap: booting image img-1 failed; retrying in 30 s"\n'
    "sleep 30\n"
    "reboot\n"
)


def test_grub_config_exact() -> None:
    assert render_grub_config(BASE + "/", "img-1", "tok-EN_1", ["quiet"]) == GRUB_CFG


def test_same_command_line_as_ipxe_but_the_mac_and_the_loader() -> None:
    ipxe = kernel_arguments(BASE, "img-1", "tok-EN_1", ["quiet"])
    grub = kernel_arguments(
        BASE, "img-1", "tok-EN_1", ["quiet"], mac="${livestrap_mac}", boot_path="grub"
    )
    changed = [(a, b) for a, b in zip(ipxe, grub, strict=True) if a != b]
    assert [b for _, b in changed] == [
        "fetch=http://10.0.0.1:8080/boot/m/${livestrap_mac}/images/img-1/root.squashfs",
        "BOOTIF=01-${livestrap_mac}",
        "livestrap.boot=grub",
    ]


@pytest.mark.parametrize("base", ["https://master.example", "http://[fd00::1]:8080"])
def test_tftp_only_where_grub_cannot_use_the_url(base: str) -> None:
    config = render_grub_config(base, "img-1", "tok")
    assert "(http," not in config and "if linux" not in config
    assert "\nlinux /image/img-1/vmlinuz initrd=initrd.img " in config


def test_no_image_config_exact() -> None:
    assert render_grub_no_image(45) == HEADER + (
        'echo "livestrap: no active image on the master; retrying in 45 s"\nsleep 45\nreboot\n'
    )


@pytest.mark.parametrize(
    "cmdline", [["a;reboot"], ["x=$(y)"], ['q="'], ["a b"], ["{x}"], ["a\nlinux /evil"]]
)
def test_hostile_kernel_options_never_reach_grub(cmdline: list[str]) -> None:
    with pytest.raises(ValueError):
        render_grub_config(BASE, "img-1", "tok", cmdline)


@pytest.mark.parametrize("image_id", ["img 1", "img;1", "$img", "img\n"])
def test_hostile_image_ids_refused(image_id: str) -> None:
    with pytest.raises(ValueError):
        render_grub_config(BASE, image_id, "tok")


def test_bad_retry_and_reason_refused() -> None:
    with pytest.raises(ValueError):
        render_grub_no_image(0)
    with pytest.raises(ValueError):
        render_grub_no_image(5, 'say "hi"')
