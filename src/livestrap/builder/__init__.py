"""Image build stages: rootfs → customize → bootfiles → squashfs → metadata → commit."""
