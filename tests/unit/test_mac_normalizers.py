"""The agent's and the master's MAC normalizers on one table, so they cannot drift.

The agent keeps its own copy (it imports nothing of livestrap's); both follow one rule:
six hex octets with one separator throughout (':', '-' or none), optionally after
PXELINUX's BOOTIF prefix `01` written with that same separator. Before this table the
agent refused 'aabbccddeeff' (the master took it), the master refused '01:aa:..'
(the agent took it), and each took some mixed separators the other refused.
"""

from __future__ import annotations

import pytest

from livestrap.agent.config import normalize_mac as agent_normalize
from livestrap.master.events import normalize_mac as master_normalize

pytestmark = pytest.mark.unit

MAC = "aa:bb:cc:dd:ee:ff"
TABLE: list[tuple[str, str | None]] = [
    # the forms nodes, iPXE, PXELINUX and operators write
    ("aa:bb:cc:dd:ee:ff", MAC),
    ("AA:BB:CC:DD:EE:FF", MAC),
    ("Aa:bB:cC:Dd:eE:Ff", MAC),
    ("aa-bb-cc-dd-ee-ff", MAC),
    ("AA-BB-CC-DD-EE-FF", MAC),
    ("aabbccddeeff", MAC),
    ("AABBCCDDEEFF", MAC),
    ("01-aa-bb-cc-dd-ee-ff", MAC),
    ("01-AA-BB-CC-DD-EE-FF", MAC),
    ("01:aa:bb:cc:dd:ee:ff", MAC),
    ("  aa:bb:cc:dd:ee:ff\n", MAC),
    ("52:54:00:12:34:56\n", "52:54:00:12:34:56"),
    ("00:00:00:00:00:00", "00:00:00:00:00:00"),
    # a MAC that itself starts with 01 is not a BOOTIF prefix
    ("01-aa-bb-cc-dd-ee", "01:aa:bb:cc:dd:ee"),
    ("01aabbccddee", "01:aa:bb:cc:dd:ee"),
    # separators: one kind throughout, at every octet, or none at all
    ("aa:bb-cc:dd:ee:ff", None),
    ("aa-bb-cc-dd-ee:ff", None),
    ("aabb:cc:dd:ee:ff", None),
    ("aabb:ccdd:eeff", None),
    ("aabb.ccdd.eeff", None),
    ("aa.bb.cc.dd.ee.ff", None),
    ("aa bb cc dd ee ff", None),
    ("aa::bb:cc:dd:ee:ff", None),
    (":aa:bb:cc:dd:ee:ff", None),
    ("aa:bb:cc:dd:ee:ff:", None),
    ("01-aa:bb:cc:dd:ee:ff", None),
    ("01:aa-bb-cc-dd-ee-ff", None),
    ("01-aabbccddeeff", None),
    ("01aabbccddeeff", None),
    # wrong length
    ("aa:bb:cc:dd:ee", None),
    ("aa:bb:cc:dd:ee:ff:00", None),
    ("aabbccddeeff00", None),
    ("aa:bb:cc:dd:ee:f", None),
    ("a:b:c:d:e:f", None),
    ("01-aa-bb-cc", None),
    (":".join(["80"] + ["fe"] * 19), None),  # a 20-octet InfiniBand address
    # garbage
    ("06-aa-bb-cc-dd-ee-ff", None),  # BOOTIF of a non-Ethernet type
    ("gg:bb:cc:dd:ee:ff", None),
    ("aa:bb:cc:dd:ee:ff\n:ff", None),
    ("aa:bb:cc:dd:ee:ff\x00", None),
    ("\uff41\uff41:bb:cc:dd:ee:ff", None),  # fullwidth letters
    ("\u0661\u0662:bb:cc:dd:ee:ff", None),  # Arabic-Indic digits
    ("garbage", None),
    ("x" * 10_000, None),
    ("   ", None),
    ("", None),
]


@pytest.mark.parametrize(("raw", "expected"), TABLE)
def test_agent_and_master_agree(raw: str, expected: str | None) -> None:
    assert agent_normalize(raw) == expected
    assert master_normalize(raw) == expected


def test_the_master_also_takes_none() -> None:
    assert master_normalize(None) is None


def test_a_normalized_mac_is_a_fixed_point() -> None:
    for raw, expected in TABLE:
        if expected is not None:
            assert agent_normalize(expected) == master_normalize(expected) == expected, raw
