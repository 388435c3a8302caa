#!/usr/bin/env bash
# memcap.sh: runs a command with its whole process tree inside a memory cgroup of LIMIT_MIB,
# after dropping the page cache, as a machine with that much memory imposes it: code,
# libraries, weights, buffers and the page cache the process fills all count against the
# limit. Prints the cgroup's peak usage and whether the limit was hit.
# Needs root (it creates the cgroup and drops the caches) and the cgroup memory controller
# (cgroup v2 with "memory" enabled at the root, or v1 mounted at /sys/fs/cgroup/memory).
# Usage: bash bench/memcap.sh LIMIT_MIB COMMAND [ARGS...]
#   e.g. bash bench/memcap.sh 400 build/chronos generate --model runs/anchor --prompt "The state" --ram-budget auto
set -euo pipefail
if [ $# -lt 2 ] || ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ]; then
  echo "usage: bash bench/memcap.sh LIMIT_MIB COMMAND [ARGS...]" >&2; exit 2
fi
limit_mib=$1; shift
if [ "$(id -u)" -ne 0 ]; then
  echo "memcap: needs root: it creates a memory cgroup and drops the page cache (run it with sudo)" >&2; exit 2
fi
bytes=$((limit_mib * 1024 * 1024))
name="chronos-memcap-$$"
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
  version=2; cg="/sys/fs/cgroup/$name"
  mkdir "$cg"
  echo "$bytes" > "$cg/memory.max"
  [ -f "$cg/memory.swap.max" ] && echo 0 > "$cg/memory.swap.max"
  peak_file="$cg/memory.peak"; events="$cg/memory.events"
elif [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
  version=1; cg="/sys/fs/cgroup/memory/$name"
  mkdir "$cg"
  echo "$bytes" > "$cg/memory.limit_in_bytes"
  [ -f "$cg/memory.memsw.limit_in_bytes" ] && echo "$bytes" > "$cg/memory.memsw.limit_in_bytes"
  peak_file="$cg/memory.max_usage_in_bytes"; events="$cg/memory.failcnt"
else
  echo "memcap: no cgroup memory controller here (neither cgroup v2 with memory nor v1 at /sys/fs/cgroup/memory)" >&2; exit 2
fi
trap 'rmdir "$cg" 2>/dev/null || true' EXIT

sync
echo 3 > /proc/sys/vm/drop_caches
set +e
# The subshell moves itself into the cgroup, then becomes the command.
( echo "$BASHPID" > "$cg/cgroup.procs" && exec "$@" )
rc=$?
set -e
peak="unknown"
[ -f "$peak_file" ] && peak="$(( $(cat "$peak_file") / 1024 / 1024 )) MiB"
if [ "$version" = 2 ]; then
  hit="oom kills $(awk '$1 == "oom_kill" {print $2}' "$events"), limit reached $(awk '$1 == "max" {print $2}' "$events") times"
else
  hit="limit reached $(cat "$events") times"
fi
echo "memcap: limit ${limit_mib} MiB (cgroup v${version}), peak ${peak}, ${hit}, exit status ${rc}" >&2
exit "$rc"
