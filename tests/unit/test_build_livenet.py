"""build.livenet: the live-boot component that takes the BOOTIF interface at once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from livestrap.builder import livenet

pytestmark = pytest.mark.unit

COMPONENT = """\
#!/bin/sh
# livestrap: take the interface BOOTIF names at once (see livestrap.builder.livenet)

eval "$(sed -e 's/^Select_eth_device ()/Livestrap_live_select_eth_device ()/' \\
	/x/select.sh)"

Select_eth_device ()
{
	DEVICE=""
	if [ -n "${FETCH}${HTTPFS}${FTPFS}" ] && [ -n "${BOOTIF}" ]
	then
		modprobe -q af_packet
		udevadm trigger
		udevadm settle
		Device_from_bootif
	fi
	if [ -z "${DEVICE}" ]
	then
		Livestrap_live_select_eth_device
		return
	fi
	echo "livestrap: network boot on ${DEVICE} (BOOTIF)"
	echo "DEVICE=${DEVICE}" >> /conf/param.conf
	ip link set "${DEVICE}" up
	tries=20
	carrier="/sys/class/net/${DEVICE}/carrier"
	while [ "$(cat "${carrier}" 2>/dev/null)" != 1 ] && [ "${tries}" -gt 0 ]
	do
		sleep 0.1
		tries=$((tries - 1))
	done
}
"""


def test_component_exact() -> None:
    assert livenet.render_component("/x/select.sh", carrier_wait_s=2) == COMPONENT


def test_hook_exact() -> None:
    assert livenet.render_hook("X\n") == (
        "#!/bin/sh\n"
        "# livestrap: live-boot component for a quick PXE network start\n"
        'case "$1" in prereqs) echo; exit 0;; esac\n'
        'mkdir -p "${DESTDIR}/lib/live/boot"\n'
        "cat > \"${DESTDIR}/lib/live/boot/9999-livestrap-bootif\" <<'LIVESTRAP_EOF'\n"
        "X\n"
        "LIVESTRAP_EOF\n"
    )


def test_component_sorts_after_live_boots_own() -> None:
    name = livenet.COMPONENT.rsplit("/", 1)[1]
    assert name[4] == "-" and name[:4].isdigit() and name > "9990-select-eth-device.sh"


def test_hook_writes_the_component_verbatim(tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.write_text(livenet.render_hook())
    hook.chmod(0o755)
    prereqs = subprocess.run([str(hook), "prereqs"], capture_output=True, text=True, timeout=5)
    assert (prereqs.returncode, prereqs.stdout) == (0, "\n")
    dest = tmp_path / "initramfs"
    subprocess.run([str(hook)], env={"DESTDIR": str(dest)}, check=True, timeout=5)
    assert (dest / livenet.COMPONENT).read_text() == livenet.render_component()


def _run_component(tmp_path: Path, bootif: str, fetch: str) -> str:
    """Source the component in sh with live-boot's functions and tools stubbed out."""
    live = tmp_path / "select.sh"
    live.write_text('Select_eth_device ()\n{\n\techo "live-boot selection"\n}\n')
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for tool in ("modprobe", "udevadm", "ip", "sleep"):
        (stubs / tool).write_text("#!/bin/sh\nexit 0\n")
        (stubs / tool).chmod(0o755)
    component = tmp_path / "component"
    component.write_text(livenet.render_component(str(live), carrier_wait_s=1))
    script = (
        f'PATH={stubs}:/usr/bin:/bin; FETCH="{fetch}"; BOOTIF="{bootif}"\n'
        'Device_from_bootif () { [ "$BOOTIF" = 01-52-54-00-00-00-01 ] && DEVICE=ens2; }\n'
        f". {component}\n"
        "Select_eth_device\n"
        'echo "DEVICE=$DEVICE"\n'
    )
    # /conf/param.conf is not writable here: its echo fails and the function goes on
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10)
    return proc.stdout


def test_bootif_interface_is_taken_without_probing(tmp_path: Path) -> None:
    out = _run_component(tmp_path, "01-52-54-00-00-00-01", "http://m/root.squashfs")
    assert "livestrap: network boot on ens2 (BOOTIF)" in out
    assert "live-boot selection" not in out and out.endswith("DEVICE=ens2\n")


@pytest.mark.parametrize(
    ("bootif", "fetch"),
    [("", "http://m/root.squashfs"), ("01-aa-bb-cc-dd-ee-ff", "x"), ("01-52-54-00-00-00-01", "")],
)
def test_live_boots_selection_without_a_usable_bootif(
    tmp_path: Path, bootif: str, fetch: str
) -> None:
    assert _run_component(tmp_path, bootif, fetch).startswith("live-boot selection\n")
