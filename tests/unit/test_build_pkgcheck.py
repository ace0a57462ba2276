"""build.pkgcheck: which requested packages `apt-cache policy` cannot install."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from livestrap.builder import pkgcheck

pytestmark = pytest.mark.unit

# `apt-cache policy bash mail-transport-agent linux-image-amd64 nosuchpkg`: a real package
# (installed), a purely virtual one, a real one not installed, and an unknown name, which
# prints nothing at all on stdout.
POLICY = """\
bash:
  Installed: 5.2.15-2+b7
  Candidate: 5.2.15-2+b7
  Version table:
 *** 5.2.15-2+b7 500
        500 http://mirror.example.test/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
mail-transport-agent:
  Installed: (none)
  Candidate: (none)
  Version table:
linux-image-amd64:
  Installed: (none)
  Candidate: 6.1.76-1
  Version table:
     6.1.76-1 500
        500 http://mirror.example.test/debian bookworm/main amd64 Packages
"""


def test_available_packages() -> None:
    assert pkgcheck.available_packages(POLICY) == {"bash", "linux-image-amd64"}


def test_available_packages_empty_output() -> None:
    assert pkgcheck.available_packages("") == set()


def test_available_packages_pinned_candidate() -> None:
    text = (
        "acme-agent:\n"
        "  Installed: (none)\n"
        "  Candidate: 2.0-1\n"
        "  Version table:\n"
        "     2.0-1 900\n"
        "        900 http://acme.example.test/apt stable/main amd64 Packages\n"
        "     1.0-1 500\n"
        "        500 http://mirror.example.test/debian bookworm/main amd64 Packages\n"
    )
    assert pkgcheck.available_packages(text) == {"acme-agent"}


def test_missing_packages_keeps_request_order_and_ignores_versions() -> None:
    requested = [
        "nosuchpkg",
        "bash",
        "mail-transport-agent",
        "linux-image-amd64=6.1.76-1",
        "another-typo=1.0",
    ]
    assert pkgcheck.missing_packages(requested, POLICY) == [
        "nosuchpkg",
        "mail-transport-agent",
        "another-typo=1.0",
    ]
    assert pkgcheck.missing_packages(["bash", "linux-image-amd64"], POLICY) == []


def fake_apt_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str) -> Path:
    """Put an `apt-cache` first on PATH that records its arguments and prints `output`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "policy.txt").write_text(output)
    script = bin_dir / "apt-cache"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "{tmp_path}/args.txt"\n'
        f'printf "%s\\n" "${{APT_CONFIG:-unset}}" > "{tmp_path}/apt-config.txt"\n'
        f'cat "{tmp_path}/policy.txt"\n'
        "echo 'N: Unable to locate package nosuchpkg' >&2\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.delenv("APT_CONFIG", raising=False)
    return tmp_path / "args.txt"


def test_main_writes_the_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args_file = fake_apt_cache(tmp_path, monkeypatch, POLICY)
    monkeypatch.setenv("MMDEBSTRAP_APT_CONFIG", "/tmp/mmdebstrap.x/apt.conf")
    out = tmp_path / "missing-packages"
    code = pkgcheck.main(
        [str(out), "bash", "nosuchpkg", "mail-transport-agent", "linux-image-amd64=6.1.76-1"]
    )
    assert code == 1
    assert out.read_text() == "nosuchpkg\nmail-transport-agent\n"
    # names are queried once each, sorted, without version suffixes; those without a
    # candidate are looked up again for providers
    assert args_file.read_text() == (
        "policy bash linux-image-amd64 mail-transport-agent nosuchpkg\n"
        "showpkg mail-transport-agent nosuchpkg\n"
    )
    # inside mmdebstrap's hook, apt-cache must read mmdebstrap's APT configuration
    assert (tmp_path / "apt-config.txt").read_text() == "/tmp/mmdebstrap.x/apt.conf\n"
    assert "packages not found: nosuchpkg mail-transport-agent" in capsys.readouterr().err


def test_main_all_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_apt_cache(tmp_path, monkeypatch, POLICY)
    monkeypatch.delenv("MMDEBSTRAP_APT_CONFIG", raising=False)
    out = tmp_path / "missing-packages"
    out.write_text("stale\n")
    assert pkgcheck.main([str(out), "bash", "linux-image-amd64"]) == 0
    assert out.read_text() == ""
    assert (tmp_path / "apt-config.txt").read_text() == "unset\n"
    assert "all 2 requested packages are available" in capsys.readouterr().out
