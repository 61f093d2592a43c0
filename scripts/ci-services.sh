#!/usr/bin/env bash
# Install what the ssh and slurm backend tests start (sshd, munge, slurmctld, slurmd, clients).
# The test fixtures start and stop the daemons themselves, in temp folders; this only makes the
# packages present up front (the fixtures would otherwise try the same install, then skip).
set -euo pipefail
pkgs=(openssh-server openssh-client slurmctld slurmd slurm-client munge)
need=0
for b in sshd munged slurmctld slurmd sbatch; do
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || need=1
done
if [ "$need" = 0 ]; then echo "ci-services: all present"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "ci-services: not root, cannot install ${pkgs[*]}" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${pkgs[@]}" || {
  apt-get update && apt-get install -y --no-install-recommends "${pkgs[@]}"
}
