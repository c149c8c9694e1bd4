#!/usr/bin/env bash
# Stops the daemons tests/slurm/start-cluster.sh started in DIR (by their pid
# files, nothing else), waiting until they are gone.
set -uo pipefail
dir=${1:?usage: stop-cluster.sh DIR}
# Cancel what still runs on this cluster first, so no job step outlives its slurmd.
if [ -s "$dir/slurm.conf" ] && [ -s "$dir/slurmctld.pid" ]; then
  SLURM_CONF="$dir/slurm.conf" timeout 10 scancel --full --quiet --user=root 2>/dev/null || true
fi
pids=()
for f in slurmd.pid slurmctld.pid munge/munged.pid; do
  [ -s "$dir/$f" ] || continue
  pid=$(cat "$dir/$f")
  kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
done
for pid in "${pids[@]}"; do
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
done
exit 0
