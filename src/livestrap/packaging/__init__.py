"""Debian packaging: .debs made with dpkg-deb and signed APT repositories served by the master."""
