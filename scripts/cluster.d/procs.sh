# shellcheck shell=bash
# Starting, probing and stopping the cluster's daemons. Each runs in a
# session of its own, detached from the caller's stdio (so a caller that
# reads `up`'s output is not held open by them), logging to
# $S/logs/<name>.log; its pid and binary are kept in $S/pids/<name> so that
# `down` stops exactly the process it started, even from another shell.

# proc_alive <name>: the recorded process still runs the recorded binary.
proc_alive() {
  local f="$S/pids/$1" pid exe
  [ -s "$f" ] || return 1
  read -r pid exe <"$f"
  [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]
}

proc_pid() { [ -s "$S/pids/$1" ] && cut -d' ' -f1 "$S/pids/$1"; }

# proc_start <name> <binary> <args...>: starts it unless it already runs.
proc_start() {
  local name="$1"; shift
  if proc_alive "$name"; then
    log "$name: already running (pid $(proc_pid "$name"))"
    return 0
  fi
  mkdir -p "$S/pids" "$S/logs"
  # 9>&-: the daemon must not inherit the lock of `up` (scripts/tools.sh
  # with_lock), or it would hold it for as long as it runs.
  setsid "$@" </dev/null >>"$S/logs/$name.log" 2>&1 9>&- &
  local pid=$!
  echo "$pid $(readlink -f "$1")" >"$S/pids/$name"
  # Until setsid has exec'd, /proc/<pid>/exe is not the daemon yet.
  for _ in $(seq 50); do proc_alive "$name" && return 0; sleep 0.05; done
  log "$name did not start; the end of $S/logs/$name.log:"
  tail -n 30 "$S/logs/$name.log" >&2
  return 1
}

# proc_wait <name> <seconds> <probe...>: polls the probe until it succeeds;
# fails early, with the end of the log, if the process has exited.
proc_wait() {
  local name="$1" limit="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$name" ] && ! proc_alive "$name"; then
      log "$name exited; the end of $S/logs/$name.log:"
      tail -n 30 "$S/logs/$name.log" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "timed out after ${limit}s waiting for ${name:-$1}: $*"
      [ -z "$name" ] || tail -n 30 "$S/logs/$name.log" >&2
      return 1
    fi
    sleep 0.2
  done
}

# proc_stop <seconds> <names...>: SIGTERM to all, SIGKILL to those left after
# the grace period (the apiserver and the controller-manager stop slowly, so
# they are stopped together).
proc_stop() {
  local grace="$1"; shift
  local n pids=() deadline=$((SECONDS + grace))
  for n in "$@"; do
    if proc_alive "$n"; then
      pids+=("$(proc_pid "$n")")
      kill -TERM "$(proc_pid "$n")" 2>/dev/null || true
    fi
  done
  for n in "$@"; do
    while proc_alive "$n" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if proc_alive "$n"; then
      log "$n: still running after ${grace}s, killing it"
      kill -KILL "$(proc_pid "$n")" 2>/dev/null || true
      while proc_alive "$n"; do sleep 0.1; done
    fi
    rm -f "$S/pids/$n"
  done
}

# Probes.
probe_https() { curl -sf --max-time 2 --cacert "$PKI/ca.crt" "$@"; }
probe_http() { curl -sf --max-time 2 "$@"; }
