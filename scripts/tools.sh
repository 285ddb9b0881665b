#!/usr/bin/env bash
# Pinned test and build tools, installed from the registries this project can
# reach (npm, Debian, the Go module proxy) into a cache outside the repository,
# keyed by version so that reruns are instant. Source it, then call `need_*`;
# each returns non-zero on failure. Sourcing changes no shell options of the
# caller (scripts/test must survive failing test tiers).

S3CSI_CACHE="${S3CSI_CACHE:-$HOME/.cache/s3csi}"
DENO_VERSION="2.9.6"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"  # commit 7aac2a2c5b7c, the last upstream HEAD
CSI_SANITY_VERSION="v5.4.0"
export GOTOOLCHAIN=local
export PATH="/usr/local/go/bin:$PATH"

log() { printf '[tools] %s\n' "$*" >&2; }

# A lock per tool so that parallel callers do not build the same thing twice.
with_lock() {
  local name="$1"; shift
  mkdir -p "$S3CSI_CACHE/locks"
  (
    flock 9
    "$@"
  ) 9>"$S3CSI_CACHE/locks/$name.lock"
}

_install_deno() {
  local dir="$S3CSI_CACHE/deno-$DENO_VERSION"
  [ -x "$dir/bin/deno" ] && return 0
  log "installing deno $DENO_VERSION from npm"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  npm install --silent --no-audit --no-fund --prefix "$dir.tmp" "deno@$DENO_VERSION" >&2 || return 1
  local bin
  bin=$(find "$dir.tmp/node_modules/@deno" -maxdepth 2 -name deno -type f | head -n1)
  [ -n "$bin" ] || { log "deno binary not found in the npm package"; return 1; }
  mkdir -p "$dir.tmp/bin" && cp "$bin" "$dir.tmp/bin/deno" && chmod +x "$dir.tmp/bin/deno" || return 1
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
need_deno() {
  with_lock deno _install_deno || return 1
  DENO="$S3CSI_CACHE/deno-$DENO_VERSION/bin/deno"
  export DENO
  export PATH="$S3CSI_CACHE/deno-$DENO_VERSION/bin:$PATH"
}

_install_minio() {
  local dir="$S3CSI_CACHE/minio-$MINIO_VERSION"
  [ -x "$dir/minio" ] && return 0
  log "building minio@$MINIO_VERSION with go install (first run takes several minutes)"
  mkdir -p "$dir.tmp"
  CGO_ENABLED=0 GOBIN="$dir.tmp" go install -trimpath -ldflags '-s -w' \
    "github.com/minio/minio@$MINIO_VERSION" >&2 || return 1
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
need_minio() {
  with_lock minio _install_minio || return 1
  MINIO_BIN="$S3CSI_CACHE/minio-$MINIO_VERSION/minio"
  export MINIO_BIN
}

_install_csi_sanity() {
  local dir="$S3CSI_CACHE/csi-sanity-$CSI_SANITY_VERSION"
  [ -x "$dir/csi-sanity" ] && return 0
  log "building csi-sanity $CSI_SANITY_VERSION with go install"
  mkdir -p "$dir.tmp"
  CGO_ENABLED=0 GOBIN="$dir.tmp" go install -trimpath \
    "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@$CSI_SANITY_VERSION" >&2 || return 1
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
need_csi_sanity() {
  with_lock csi-sanity _install_csi_sanity || return 1
  CSI_SANITY_BIN="$S3CSI_CACHE/csi-sanity-$CSI_SANITY_VERSION/csi-sanity"
  export CSI_SANITY_BIN
}

# Debian packages: fuse3 (fusermount3, the kernel module helper), fio for the
# real-mount and benchmark tiers, util-linux for mountpoint/findmnt.
_install_debs() {
  local missing=()
  command -v fusermount3 >/dev/null || missing+=(fuse3)
  command -v fio >/dev/null || missing+=(fio)
  command -v findmnt >/dev/null || missing+=(util-linux)
  command -v flock >/dev/null || missing+=(util-linux)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then log "need root for apt-get"; return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || return 1
}
need_debs() { _install_debs; }
