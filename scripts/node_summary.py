"""Print a short summary of a node's facts (JSON from `livestrap nodes show` on stdin)."""

import json
import sys

node = json.load(sys.stdin)
facts = node["facts"]
system, cpu = facts["system"], facts["cpu"]
print(
    f"  system  {system['vendor']} {system['product']}, serial {system['serial']}, "
    f"uuid {system['uuid']}, firmware {system['firmware']}"
)
print(f"  cpu     {cpu['model']}, {cpu['threads']} thread(s)")
print(f"  memory  {facts['memory']['total'] / 2**20:.0f} MiB")
for disk in facts["disks"]:
    print(f"  disk    {disk['name']} {disk['size'] / 2**30:.1f} GiB serial {disk['serial']}")
for nic in facts["nics"]:
    print(f"  nic     {nic['name']} {nic['mac']} driver {nic['driver']} pxe={nic['pxe']}")
print(f"  status  {node['status']}, image {node['image_id']}, agent {node['agent_version']}")
