"""Each MTA host's EBS disks: one definition for the component that creates them and the cost that prices them."""

from __future__ import annotations

# gp3: the lowest-cost SSD type, with a 3,000 IOPS / 125 MiB/s baseline included in its GB-month price
# (Amazon EBS User Guide, "General Purpose SSD volumes"): enough for a mail queue, no IOPS to provision.
VOLUME_TYPE = "gp3"
# The mail spool volume (queues and bounce mail), protected and retained across instance replacements.
SPOOL_SIZE_GIB = 50
# The root disk holds nothing that is not rebuilt at boot.
ROOT_SIZE_GIB = 20
