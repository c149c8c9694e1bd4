#!/usr/bin/env bash
# A real Slurm sweep: starts a one-node cluster (start-cluster.sh), submits a
# 4-run grid with `attnlab sweep --launcher slurm`, waits for the array, and
# checks that every run's results equal a local sweep of the same grid; then
# that --status, a resubmission (only the missing run) and a report of the
# partial sweep behave. Stops the daemons it started, also on failure.
#   tests/slurm/test-sweep.sh path/to/attnlab
set -euo pipefail
bin=$(realpath "${1:?usage: test-sweep.sh ATTNLAB_BINARY}")
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" != 0 ]; then echo "skipped: the test cluster needs root"; exit 77; fi
for tool in munged slurmctld slurmd sbatch squeue; do
  command -v "$tool" > /dev/null || { echo "FAIL: $tool missing (make deps installs munge and slurm-wlm)"; exit 1; }
done

tmp=$(mktemp -d /tmp/attnlab-slurm-test.XXXXXX)
cleanup() {
  "$here/stop-cluster.sh" "$tmp/cluster"
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/cluster/log/*.log "$tmp"/slurm/slurm/logs/*; do [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done; exit 1; }

"$here/start-cluster.sh" "$tmp/cluster"
export SLURM_CONF="$tmp/cluster/slurm.conf"

cat > "$tmp/grid.toml" <<'GRID'
title = "slurm test"
[base.model]
dim = 8
layers = 2
[base.task]
name = "ladder"
n = 4
k = 1
[base.train]
steps = 12
batch = 4
context = 8
warmup = 1
eval_every = 6
eval_windows = 16
log_every = 3
[grid]
"model.attention" = ["softmax", "cog"]
"train.seed" = [1, 2]
GRID
cd "$tmp"

# Waits until no task of the sweep in $1 is queued or running (at most $2 seconds).
wait_for_sweep() {
  local t0=$SECONDS
  while "$bin" sweep --status "$1" | grep -qE '^[^ ]+ +(running|queued) '; do
    [ $((SECONDS - t0)) -lt "$2" ] || fail "the Slurm tasks did not finish within $2 s: $("$bin" sweep --status "$1")"
    sleep 0.5
  done
}

"$bin" sweep --grid grid.toml --out local --jobs 2 > local.txt || fail "local sweep: $(cat local.txt)"
"$bin" sweep --grid grid.toml --out slurm --launcher slurm --max-parallel 2 --dry-run > dry.txt
grep -q '^#SBATCH --array=0-3%2$' dry.txt || fail "dry run: no 4-task array limited to 2: $(cat dry.txt)"
squeue -h | grep -q . && fail "the dry run submitted something"

"$bin" sweep --grid grid.toml --out slurm --launcher slurm --max-parallel 2 > submit.txt ||
  fail "submission: $(cat submit.txt)"
grep -q "submitted Slurm job [0-9]*: 4 of 4 runs" submit.txt || fail "submission: $(cat submit.txt)"
# Submitting again while the array is queued or running adds nothing.
"$bin" sweep --grid grid.toml --out slurm --launcher slurm --max-parallel 2 > again.txt
grep -qE "nothing to submit|submitted Slurm job [0-9]*: [0-3] of 4" again.txt || fail "resubmission while queued: $(cat again.txt)"
wait_for_sweep slurm 120

"$bin" sweep --status slurm > status.txt
grep -q "4 runs: 4 finished, 0 running, 0 queued, 0 failed, 0 not started" status.txt ||
  fail "status after the array: $(cat status.txt)"
n_logs=$(ls slurm/slurm/logs | wc -l)
[ "$n_logs" -ge 4 ] || fail "expected one Slurm log per array task, found $n_logs"

# The same results as the local sweep: every run's metrics (the wall-time and
# speed columns aside) and its final evaluation.
for run in $(cd local && ls -d */ | tr -d /); do
  [ -f "slurm/$run/summary.json" ] || fail "$run has no summary.json under Slurm"
  cut -d, -f1-7 "local/$run/metrics.csv" > a.csv
  cut -d, -f1-7 "slurm/$run/metrics.csv" > b.csv
  cmp -s a.csv b.csv || fail "$run: metrics differ from the local run: $(diff a.csv b.csv | head -5)"
  for key in eval_accuracy eval_loss train_loss steps; do
    a=$(grep "\"$key\"" "local/$run/summary.json"); b=$(grep "\"$key\"" "slurm/$run/summary.json")
    [ "$a" = "$b" ] || fail "$run: $key differs: local $a, Slurm $b"
  done
done
cut -d, -f1-6 local/runs.csv > a.csv; cut -d, -f1-6 slurm/runs.csv > b.csv
cmp -s a.csv b.csv || fail "runs.csv differs: $(diff a.csv b.csv | head -5)"

# A lost run: the report says what is missing, --status shows it, a rerun submits only it.
lost=$(sed -n 2p local/runs.csv | cut -d, -f1)
rm -rf "slurm/$lost"
"$bin" report slurm > report.txt || fail "report of a partial sweep: $(cat report.txt)"
grep -q "1 of 4 runs missing" report.txt || fail "report does not say a run is missing: $(cat report.txt)"
"$bin" sweep --status slurm | grep -qE "^$lost +not started" || fail "status of the lost run"
"$bin" sweep --grid grid.toml --out slurm --launcher slurm > resubmit.txt
grep -q "submitted Slurm job [0-9]*: 1 of 4 runs" resubmit.txt || fail "resubmission: $(cat resubmit.txt)"
grep -q "^  $lost\$" slurm/slurm/sweep.sbatch || fail "the new script does not list $lost"
wait_for_sweep slurm 60
"$bin" sweep --status slurm | grep -q "4 runs: 4 finished" || fail "status after the resubmission"
cmp -s <(cut -d, -f1-7 "local/$lost/metrics.csv") <(cut -d, -f1-7 "slurm/$lost/metrics.csv") ||
  fail "$lost differs from the local run after the resubmission"
echo "PASS: 4-run sweep through sbatch equals the local sweep; status, resubmission, partial report"
