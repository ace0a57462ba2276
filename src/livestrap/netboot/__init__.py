"""Network boot outside the master: virtual nodes (QEMU) and dnsmasq for real networks."""
