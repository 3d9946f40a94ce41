#!/bin/bash
# Starts a one-node Slurm cluster on this machine from Debian's packages (slurmctld, slurmd,
# munge), as ../shared/notes/slurm-single-node.md verified: root needed (or passwordless
# sudo). Idempotent: a running cluster whose `sinfo` answers is left alone. Used by
# `make slurm-demo` and python/tests/test_slurm.py. Exit 3 when it cannot run here.
set -euo pipefail
if sinfo -h >/dev/null 2>&1 && [ -n "$(sinfo -h -o %t 2>/dev/null | grep -E 'idle|mix|alloc' || true)" ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else echo "start_cluster: needs root or passwordless sudo" >&2; exit 3; fi
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  echo "== installing slurmctld slurmd slurm-client munge (apt-get)" >&2
  $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null \
    || { echo "start_cluster: apt-get could not install Slurm" >&2; exit 3; }
fi
$SUDO mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
[ -f /etc/munge/munge.key ] || $SUDO mungekey -c
$SUDO chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
$SUDO chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || $SUDO runuser -u munge -- /usr/sbin/munged
H=$(hostname)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
if [ ! -f /etc/slurm/slurm.conf ] || ! grep -q "tokenmill" /etc/slurm/slurm.conf; then
  $SUDO tee /etc/slurm/slurm.conf >/dev/null <<CONF
# one-node cluster for tokenmill's Slurm test (Tests/slurm/start_cluster.sh)
ClusterName=local
SlurmctldHost=$H
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
NodeName=$H CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=main Nodes=$H Default=YES MaxTime=INFINITE State=UP
CONF
fi
pgrep -x slurmctld >/dev/null || $SUDO slurmctld
pgrep -x slurmd >/dev/null || $SUDO slurmd
for _ in $(seq 1 60); do
  if sinfo -h -o %t 2>/dev/null | grep -qE 'idle|mix|alloc'; then exit 0; fi
  sleep 0.5
done
echo "start_cluster: the node did not come up (see /var/log/slurm/)" >&2
exit 3
