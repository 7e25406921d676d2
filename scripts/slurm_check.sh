#!/usr/bin/env bash
# oir batch under a real scheduler: installs Debian's slurm-wlm and munge
# (as root, apt), starts a single-node Slurm cluster on localhost (its own
# slurm.conf, state and logs in a temp folder; munged, slurmctld and slurmd
# started here and stopped at the end), submits scripts/oir_batch.sbatch as a
# 3-task array over the 12-case manifest examples/batch/cases.jsonl, waits,
# summarizes, and checks the outputs against single runs: a one-process
# `oir batch` of the same manifest (every edited.png and chosen step) and
# `oir edit` of its first case. Not part of .ci/run (it installs packages and
# starts daemons); its output is in docs/cluster.md.
#
# usage: scripts/slurm_check.sh [BUILD_DIR]   (default build/release; run as root)
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
build=${1:-build/release}
oir=$repo/$build/oir
manifest=$repo/examples/batch/cases.jsonl
flags=(--model "$repo/models/tiny-shapes" --clip "$repo/models/tiny-clip" --steps 4 --size 32 --no-calibrate)
say() { echo "slurm_check: $*"; }
fail() { echo "slurm_check: FAIL: $*"; exit 1; }

[ -x "$oir" ] || fail "$oir not built (make $build/oir)"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "slurm_check: needs slurm-wlm and munge: as root, apt-get install -y slurm-wlm munge"
    exit 2
  fi
  say "installing slurm-wlm and munge (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq slurm-wlm munge >/dev/null || fail "apt-get install slurm-wlm munge"
fi
[ "$(id -u)" = 0 ] || fail "run as root: slurmd runs the jobs as root here"
say "$(slurmctld -V), $(munged --version 2>&1 | head -1)"

work=$(mktemp -d /tmp/oir-slurm.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() { # the daemons started here (by their pid files), then the temp folder
  for p in "${pids[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for i in $(seq 20); do
    alive=0
    for p in "${pids[@]}"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.5
  done
  for p in "${pids[@]}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# munge: a key, and munged on its own socket
mkdir -p "$work/munge" && chown munge: "$work/munge" && chmod 755 "$work/munge"
if [ ! -s /etc/munge/munge.key ]; then
  say "creating /etc/munge/munge.key"
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown munge: /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
fi
socket=$work/munge/munge.socket
runuser -u munge -- munged --socket="$socket" --pid-file="$work/munge/munged.pid" \
  --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed" || fail "munged did not start"
sleep 1
pids+=("$(cat "$work/munge/munged.pid")")
munge --socket="$socket" -n | unmunge --socket="$socket" >/dev/null || fail "munge round trip"
say "munged running (socket $socket)"

# a single-node cluster on localhost
host=$(hostname -s)
node=$(slurmd -C | head -1)           # NodeName=<host> CPUs=.. Boards=.. RealMemory=..
mkdir -p "$work/state" "$work/spool" "$work/jobs"
conf=$work/slurm.conf
cat > "$conf" <<EOF
ClusterName=oircheck
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$socket
CryptoType=crypto/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
${node/NodeName=$host/NodeName=$host NodeAddr=127.0.0.1} State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$conf
slurmctld -f "$conf" || fail "slurmctld did not start: $(tail -5 "$work/slurmctld.log" 2>/dev/null)"
slurmd -f "$conf" || fail "slurmd did not start: $(tail -5 "$work/slurmd.log" 2>/dev/null)"
sleep 2
pids+=("$(cat "$work/slurmctld.pid" 2>/dev/null)" "$(cat "$work/slurmd.pid" 2>/dev/null)")
for i in $(seq 30); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)' && break
  sleep 1
done
sinfo -h -o '%P %D %T %c' | sed 's/^/slurm_check: sinfo: /'
sinfo -h -o %T | grep -qE '^(idle|mixed)' || fail "the node did not become idle: $(tail -5 "$work/slurmd.log")"

# the array: 3 tasks over the 12 cases
out=$work/out
say "sbatch --array=0-2 scripts/oir_batch.sbatch examples/batch/cases.jsonl (12 cases, 3 shards)"
start=$(date +%s)
job=$(cd "$work/jobs" && OIR=$oir sbatch --parsable --wait --array=0-2 --export=ALL,OIR="$oir" \
        "$repo/scripts/oir_batch.sbatch" "$manifest" "$out" "${flags[@]}")
rc=$?
job=${job%%;*}
say "array job $job finished after $(( $(date +%s) - start )) s (sbatch --wait exit $rc)"
for f in "$work"/jobs/oir-batch-*.log; do
  echo "---- $(basename "$f")"
  grep -v ': plan: ' "$f"
done
[ $rc = 0 ] || fail "the array job failed"

say "oir batch --summarize"
"$oir" batch --summarize "$out" || fail "summarize"
sed -n '1,20p' "$out/summary.md"

# the same outputs as single runs
single=$work/single
"$oir" batch --manifest "$manifest" --out "$single" --shard 0/1 --threads 2 --quiet "${flags[@]}" >/dev/null ||
  fail "the one-process run"
ids=$(sed -n 's/^{"id": "\([^"]*\)".*/\1/p' "$manifest")
n=0 same=0
for id in $ids; do
  n=$((n + 1))
  a=$(grep -o '"chosen_step":[^,]*' "$out/$id/report.json" | tr -d ' \t\n')
  b=$(grep -o '"chosen_step":[^,]*' "$single/$id/report.json" | tr -d ' \t\n')
  if cmp -s "$out/$id/edited.png" "$single/$id/edited.png" && [ "$a" = "$b" ]; then same=$((same + 1))
  else echo "slurm_check: $id differs from the one-process run"; fi
done
say "$same of $n cases: edited.png and chosen steps identical to a one-process oir batch"
"$oir" edit --image "$repo/examples/shapes/demo.png" \
  --prompt "a red circle on the left and a blue triangle on the right on a gray background" \
  --pair "red circle->green square" --mask "$repo/examples/shapes/demo_mask0.png" \
  --pair "blue triangle->yellow star" --mask "$repo/examples/shapes/demo_mask1.png" \
  --quiet --out "$work/edit1" "${flags[@]}" >/dev/null || fail "oir edit"
cmp -s "$work/edit1/edited.png" "$out/demo-both/edited.png" || fail "demo-both differs from oir edit"
say "demo-both: edited.png identical to oir edit's"
dups=$(cat "$out"/logs/shard-*.jsonl | grep -c '"status":"done"')
say "shard logs: $(ls "$out/logs" | tr '\n' ' ')-> $dups 'done' events for 12 cases"
[ "$same" = 12 ] && [ "$n" = 12 ] && [ "$dups" = 12 ] || fail "outputs"
say "OK"
