# shellcheck shell=bash
# What the cluster changes on the host outside its state directory, recorded
# on `up` and undone on `down`:
# - paths the kubelet and containerd create where no setting moves them
#   (TRACKED_PATHS): those missing before `up` are listed in $S/created and
#   removed on `down`, after everything mounted below them is unmounted
#   (mounts propagated out of pods outlive the pods);
# - the kubelet's cgroups (the same list; emptied of processes, then removed);
# - the pod bridge (listed as link:<name>);
# - the three sysctls the kubelet rewrites at start (saved once in
#   $S/sysctl.saved, restored on `down`).

KUBELET_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)

# Paths created outside the state directory: the kubelet's root and log
# symlinks, containerd's shim sockets and fifos, the CNI result cache.
tracked_paths() {
  echo "$KUBELET_DIR"
  echo /run/containerd
  echo /var/lib/cni
  echo /var/log/containers
  echo /var/log/pods
  echo /run/netns
  echo /usr/libexec/kubernetes
  local c
  for c in /sys/fs/cgroup/*/; do
    [ -L "${c%/}" ] || echo "${c}kubepods"
  done
  [ -e /sys/fs/cgroup/cgroup.controllers ] && echo /sys/fs/cgroup/kubepods
  return 0
}

# Lists in $S/created what does not exist yet (once per path).
host_record_missing() {
  local p
  touch "$S/created"
  while read -r p; do
    [ -e "$p" ] || grep -qxF "$p" "$S/created" || echo "$p" >>"$S/created"
  done < <(tracked_paths)
}

host_bridge_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge || return 1
    echo "link:$BRIDGE" >>"$S/created"
  fi
  ip addr show dev "$BRIDGE" | grep -qF " $BRIDGE_IP/" ||
    ip addr add "$BRIDGE_IP/${POD_CIDR#*/}" dev "$BRIDGE" || return 1
  ip link set "$BRIDGE" up
}

host_save_sysctls() {
  [ -s "$S/sysctl.saved" ] && return 0
  local k
  for k in "${KUBELET_SYSCTLS[@]}"; do echo "$k $(sysctl -n "$k")"; done >"$S/sysctl.saved.tmp" &&
    mv "$S/sysctl.saved.tmp" "$S/sysctl.saved"
}

host_restore_sysctls() {
  [ -s "$S/sysctl.saved" ] || return 0
  local k v
  while read -r k v; do sysctl -q -w "$k=$v" || log "could not restore $k=$v"; done <"$S/sysctl.saved"
  rm -f "$S/sysctl.saved"
}

# Mount points at or below <dir>, deepest first.
_mounts_under() {
  findmnt -rn -o TARGET | awk -v p="$1" '$0 == p || index($0, p "/") == 1' | sort -r
}

# Unmounts everything at or below <dir> (stacked mounts too); a busy one is
# detached lazily so nothing below <dir> stays reachable.
host_unmount_under() {
  local dir="$1" t
  [ -e "$dir" ] || return 0
  for _ in 1 2 3 4 5; do
    local left
    left=$(_mounts_under "$dir")
    [ -n "$left" ] || return 0
    while read -r t; do
      t=$(printf '%b' "$t")  # findmnt -r writes a space as \x20
      umount "$t" 2>/dev/null || umount -l "$t" 2>/dev/null || true
    done <<<"$left"
  done
  [ -z "$(_mounts_under "$dir")" ] || { log "mounts left under $dir"; return 1; }
}

# Kills what is left in the kubelet's cgroups (containers whose shim died).
_kill_cgroup_procs() {
  local f pid
  while read -r f; do
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$f"
  done < <(find "$1" -name cgroup.procs 2>/dev/null)
}

host_undo() {
  [ -f "$S/created" ] || return 0
  local p rc=0 entries=()
  mapfile -t entries <"$S/created"
  # Processes first (they hold mounts and cgroups), then paths, cgroups, links.
  for p in "${entries[@]}"; do
    case "$p" in /sys/fs/cgroup/*) [ -d "$p" ] && _kill_cgroup_procs "$p" ;; esac
  done
  for p in "${entries[@]}"; do
    case "$p" in link:* | /sys/fs/cgroup/*) continue ;; esac
    [ -e "$p" ] || continue
    # Never recurse into something still mounted (a bucket, a host path).
    if host_unmount_under "$p"; then rm -rf --one-file-system "$p"; else rc=1; fi
  done
  for p in "${entries[@]}"; do
    case "$p" in
      /sys/fs/cgroup/*)
        [ -d "$p" ] || continue
        find "$p" -depth -type d -exec rmdir {} + 2>/dev/null ||
          { sleep 0.5; find "$p" -depth -type d -exec rmdir {} + 2>/dev/null; } ||
          { log "could not remove cgroup $p"; rc=1; }
        ;;
      link:*) ip link del "${p#link:}" 2>/dev/null || true ;;
    esac
  done
  [ "$rc" -ne 0 ] || rm -f "$S/created"
  return $rc
}
