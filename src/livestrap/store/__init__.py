"""The image store: versioned images under `<data-dir>/images`, one of them active."""
