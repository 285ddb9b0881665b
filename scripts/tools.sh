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

# _go_install <dir> <binary> <module@version>: `go install`, static, into the cache
# directory <dir> (through <dir>.tmp, so an interrupted build leaves nothing half-done).
_go_install() {
  local dir="$1" bin="$2" module="$3"
  [ -x "$dir/$bin" ] && return 0
  log "building $bin ${module##*@} with go install"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp" || return 1
  CGO_ENABLED=0 GOBIN="$dir.tmp" go install -trimpath "$module" >&2 || return 1
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}
_install_csi_sanity() {
  _go_install "$S3CSI_CACHE/csi-sanity-$CSI_SANITY_VERSION" csi-sanity \
    "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@$CSI_SANITY_VERSION"
}
need_csi_sanity() {
  with_lock csi-sanity _install_csi_sanity || return 1
  CSI_SANITY_BIN="$S3CSI_CACHE/csi-sanity-$CSI_SANITY_VERSION/csi-sanity"
  export CSI_SANITY_BIN
}

# Helm for the chart tier (tests/helm): built from the Go module proxy, pinned.
HELM_VERSION="v4.3.2"
_install_helm() {
  _go_install "$S3CSI_CACHE/helm-$HELM_VERSION" helm "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
}
need_helm() {
  with_lock helm _install_helm || return 1
  HELM_BIN="$S3CSI_CACHE/helm-$HELM_VERSION/helm"
  export HELM_BIN
}

# Toxiproxy for the fault tier (tests/faults): a TCP proxy whose faults the tests set over
# its HTTP API. Its module builds the server as `server`.
TOXIPROXY_VERSION="v2.5.0"
_install_toxiproxy() {
  _go_install "$S3CSI_CACHE/toxiproxy-$TOXIPROXY_VERSION" server \
    "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
}
need_toxiproxy() {
  with_lock toxiproxy _install_toxiproxy || return 1
  TOXIPROXY_BIN="$S3CSI_CACHE/toxiproxy-$TOXIPROXY_VERSION/server"
  export TOXIPROXY_BIN
}

# The benchmark's peers (scripts/bench): s3fs from Debian, rclone from the Go module proxy.
RCLONE_VERSION="v1.76.0"
_install_rclone() {
  _go_install "$S3CSI_CACHE/rclone-$RCLONE_VERSION" rclone "github.com/rclone/rclone@$RCLONE_VERSION"
}
need_rclone() {
  with_lock rclone _install_rclone || return 1
  RCLONE_BIN="$S3CSI_CACHE/rclone-$RCLONE_VERSION/rclone"
  export RCLONE_BIN
}
need_s3fs() {
  command -v s3fs >/dev/null && return 0
  log "apt-get install s3fs"
  if [ "$(id -u)" -ne 0 ]; then log "need root for apt-get"; return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq s3fs >&2 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq s3fs >&2; }
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

# Prometheus for the metrics tier: Debian's package, unpacked into the cache
# (not installed: the package would start a system-wide server on :9090).
PROMETHEUS_DEB_VERSION="2.42.0+ds-5+deb12u1"
_install_prometheus() {
  local dir="$S3CSI_CACHE/prometheus-${PROMETHEUS_DEB_VERSION}"
  PROMETHEUS_BIN="$dir/usr/bin/prometheus"
  [ -x "$PROMETHEUS_BIN" ] && return 0
  log "unpacking Debian's prometheus $PROMETHEUS_DEB_VERSION"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp" || return 1
  (cd "$dir.tmp" && { apt-get download -qq "prometheus=$PROMETHEUS_DEB_VERSION" >&2 ||
      { DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
        apt-get download -qq "prometheus=$PROMETHEUS_DEB_VERSION" >&2; }; } &&
    dpkg-deb -x prometheus_*.deb root) || return 1
  rm -rf "$dir" && mv "$dir.tmp/root" "$dir" && rm -rf "$dir.tmp"
  [ -x "$PROMETHEUS_BIN" ]
}
need_prometheus() { with_lock prometheus _install_prometheus && PROMETHEUS_BIN="$S3CSI_CACHE/prometheus-${PROMETHEUS_DEB_VERSION}/usr/bin/prometheus"; }

# --- The test cluster (tests/cluster, scripts/cluster) -----------------------
# One pinned Kubernetes release built from the Go module proxy. k8s.io/kubernetes
# replaces its staging modules with ./staging paths, which `go install` refuses,
# so a throw-away wrapper module routes each one to its published v0.x twin.
KUBE_VERSION="v1.34.12"
ETCD_VERSION="v3.6.4"  # the etcd that kubeadm and envtest pair with 1.34
CRICTL_VERSION="v1.34.0"
CSI_PROVISIONER_VERSION="v6.3.0"
KUBE_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

# Prints the go.mod of module@version, fetched through the configured proxy.
_go_mod_of() {
  local file
  file=$(cd / && GOFLAGS=-mod=mod go mod download -json "$1" | jq -r .GoMod) || return 1
  [ -s "$file" ] && cat "$file"
}

# _wrapper_build <cache dir> <function> <what> <binaries...>: unless all the
# binaries are in <cache dir>, runs <function> <out dir> inside a fresh
# wrapper module (<cache dir>.tmp/mod); the binaries go to the out dir, which
# replaces <cache dir> once the function succeeds. (Steps are chained with &&
# in the functions: `set -e` does not hold in a tested subshell.)
_wrapper_build() {
  local dir="$1" fn="$2" what="$3" b have=1
  shift 3
  for b in "$@"; do [ -x "$dir/$b" ] || have=0; done
  [ "$have" -eq 1 ] && return 0
  log "building $what from the Go proxy"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/mod" || return 1
  (cd "$dir.tmp/mod" && go mod init "local/s3csi-$(basename "$dir")" >/dev/null 2>&1 &&
    "$fn" "$dir.tmp") || return 1
  rm -rf "$dir.tmp/mod" "$dir" && mv "$dir.tmp" "$dir"
}

# Copies each replace directive of a go.mod file into the current module.
_copy_replaces() {
  local r
  for r in $(go mod edit -json "$1" |
    jq -r '(.Replace // [])[] | "\(.Old.Path)=\(.New.Path)@\(.New.Version)"'); do
    go mod edit -replace="$r" || return 1
  done
}

_kube_build() {
  local out="$1" stg="v0.${KUBE_VERSION#v1.}" minor m b pkgs=() ldf
  minor=$(cut -d. -f2 <<<"$KUBE_VERSION")
  for b in "${KUBE_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  ldf="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
  ldf+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldf+=" -X k8s.io/component-base/version.gitTreeState=clean"
  go mod edit -godebug=default=go1.24 && _go_mod_of "k8s.io/kubernetes@$KUBE_VERSION" >kk.mod ||
    return 1
  for m in $(awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' kk.mod); do
    go mod edit -replace="$m=$m@$stg" || return 1
  done
  # One build of the five: they share most of their packages.
  go get -tool "${pkgs[@]/%/@$KUBE_VERSION}" >&2 &&
    CGO_ENABLED=0 go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldf" \
      -o "$out/" "${pkgs[@]}" >&2
}
_install_kube() {
  _wrapper_build "$S3CSI_CACHE/kube-$KUBE_VERSION" _kube_build \
    "Kubernetes $KUBE_VERSION" "${KUBE_BINS[@]}"
}

_etcd_build() {
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 &&
    CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$1/etcd" go.etcd.io/etcd/server/v3 >&2
}
_install_etcd() {
  _wrapper_build "$S3CSI_CACHE/etcd-$ETCD_VERSION" _etcd_build "etcd $ETCD_VERSION" etcd
}

_install_crictl() {
  local dir="$S3CSI_CACHE/crictl-$CRICTL_VERSION"
  [ -x "$dir/crictl" ] && return 0
  log "building crictl $CRICTL_VERSION with go install"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp" || return 1
  CGO_ENABLED=0 GOBIN="$dir.tmp" go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" >&2 || return 1
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

# Sets KUBE_BIN_DIR (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kubectl), ETCD_BIN and CRICTL_BIN.
need_kube() {
  with_lock "kube-$KUBE_VERSION" _install_kube || return 1
  with_lock "etcd-$ETCD_VERSION" _install_etcd || return 1
  with_lock "crictl-$CRICTL_VERSION" _install_crictl || return 1
  KUBE_BIN_DIR="$S3CSI_CACHE/kube-$KUBE_VERSION"
  ETCD_BIN="$S3CSI_CACHE/etcd-$ETCD_VERSION/etcd"
  CRICTL_BIN="$S3CSI_CACHE/crictl-$CRICTL_VERSION/crictl"
  export KUBE_BIN_DIR ETCD_BIN CRICTL_BIN
}

# external-provisioner pins k8s.io/kubernetes too: its wrapper copies the
# replace lines of the provisioner's own go.mod. v6 wants an API server
# >= 1.34 (storage/v1 VolumeAttributesClass).
_csi_provisioner_module() { echo "github.com/kubernetes-csi/external-provisioner/${CSI_PROVISIONER_VERSION%%.*}"; }
_csi_provisioner_build() {
  local pm
  pm=$(_csi_provisioner_module)
  _go_mod_of "$pm@$CSI_PROVISIONER_VERSION" >up.mod && _copy_replaces up.mod &&
    go get -tool "$pm/cmd/csi-provisioner@$CSI_PROVISIONER_VERSION" >&2 &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$CSI_PROVISIONER_VERSION" \
      -o "$1/csi-provisioner" "$pm/cmd/csi-provisioner" >&2
}
_install_csi_provisioner() {
  _wrapper_build "$S3CSI_CACHE/csi-provisioner-$CSI_PROVISIONER_VERSION" _csi_provisioner_build \
    "csi-provisioner $CSI_PROVISIONER_VERSION" csi-provisioner
}
need_csi_provisioner() {
  with_lock "csi-provisioner-$CSI_PROVISIONER_VERSION" _install_csi_provisioner || return 1
  CSI_PROVISIONER_BIN="$S3CSI_CACHE/csi-provisioner-$CSI_PROVISIONER_VERSION/csi-provisioner"
  export CSI_PROVISIONER_BIN
}

# containerd, runc and the CNI plugins come from Debian (installed, not cached:
# apt keeps them), with the tools scripts/cluster and scripts/build-image use.
# The packages start no service here (no systemd).
_install_cluster_debs() {
  local missing=() p
  for p in containerd runc containernetworking-plugins; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  command -v ip >/dev/null || missing+=(iproute2)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  command -v jq >/dev/null || missing+=(jq)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then log "need root for apt-get"; return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || return 1
}
need_cluster_debs() { with_lock apt _install_cluster_debs; }
