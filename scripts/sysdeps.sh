#!/usr/bin/env bash
# The system programs the test suite drives for real (no mocks): tmux for the terminal tests, an
# sshd for the ssh backend, Slurm and munge for the slurm backend. The tests start and stop the
# daemons themselves in temp folders; this only makes sure the packages are there.
# Installs with apt-get when run as root; otherwise says what is missing (those tests then skip,
# saying why).
set -uo pipefail
pkgs=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have tmux || pkgs+=(tmux)
have sshd || pkgs+=(openssh-server)
have ssh || pkgs+=(openssh-client)
have munged || pkgs+=(munge)
have slurmctld || pkgs+=(slurmctld)
have slurmd || pkgs+=(slurmd)
have sbatch || pkgs+=(slurm-client)
[ ${#pkgs[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "sysdeps: missing ${pkgs[*]}: install them (sudo apt-get install ${pkgs[*]}); their tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "sysdeps: installing ${pkgs[*]}"
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null 2>&1
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null || {
    echo "sysdeps: could not install ${pkgs[*]}; their tests will skip" >&2
  }
}
exit 0
