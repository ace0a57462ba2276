"""live-boot's network start, made quick for a PXE boot (an initramfs component).

With `fetch=` and `BOOTIF=` live-boot still probes every interface with six fixed
seconds of `sleep 1` before its DHCP, although the boot NIC is named by BOOTIF. Our
component (sourced after live-boot's own, so its function wins) takes the BOOTIF
interface as soon as its link is up; without a BOOTIF that matches an interface it runs
live-boot's original selection, kept under another name. DHCP itself is left to
live-boot: it takes well under a second, and live-boot's `ip=` has its own syntax.
"""

from __future__ import annotations

# live-boot sources /lib/live/boot/????-* in order: this name sorts after its 9990-*.
COMPONENT = "lib/live/boot/9999-livestrap-bootif"
HOOK = "etc/initramfs-tools/hooks/livestrap-bootif"
LIVE_SELECT = "/lib/live/boot/9990-select-eth-device.sh"
CARRIER_WAIT_S = 15

_COMPONENT_TEXT = """\
#!/bin/sh
# livestrap: take the interface BOOTIF names at once (see livestrap.builder.livenet)

eval "$(sed -e 's/^Select_eth_device ()/Livestrap_live_select_eth_device ()/' \\
	{live_select})"

Select_eth_device ()
{{
	DEVICE=""
	if [ -n "${{FETCH}}${{HTTPFS}}${{FTPFS}}" ] && [ -n "${{BOOTIF}}" ]
	then
		modprobe -q af_packet
		udevadm trigger
		udevadm settle
		Device_from_bootif
	fi
	if [ -z "${{DEVICE}}" ]
	then
		Livestrap_live_select_eth_device
		return
	fi
	echo "livestrap: network boot on ${{DEVICE}} (BOOTIF)"
	echo "DEVICE=${{DEVICE}}" >> /conf/param.conf
	ip link set "${{DEVICE}}" up
	tries={tries}
	carrier="/sys/class/net/${{DEVICE}}/carrier"
	while [ "$(cat "${{carrier}}" 2>/dev/null)" != 1 ] && [ "${{tries}}" -gt 0 ]
	do
		sleep 0.1
		tries=$((tries - 1))
	done
}}
"""


def render_component(live_select: str = LIVE_SELECT, carrier_wait_s: int = CARRIER_WAIT_S) -> str:
    """The shell the initramfs sources: a Select_eth_device that trusts BOOTIF."""
    return _COMPONENT_TEXT.format(live_select=live_select, tries=carrier_wait_s * 10)


def render_hook(component: str | None = None) -> str:
    """initramfs-tools hook that writes the component into the initramfs."""
    text = render_component() if component is None else component
    return (
        "#!/bin/sh\n"
        "# livestrap: live-boot component for a quick PXE network start\n"
        'case "$1" in prereqs) echo; exit 0;; esac\n'
        'mkdir -p "${DESTDIR}/lib/live/boot"\n'
        f"cat > \"${{DESTDIR}}/{COMPONENT}\" <<'LIVESTRAP_EOF'\n"
        f"{text}"
        "LIVESTRAP_EOF\n"
    )
