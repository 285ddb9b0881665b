# shellcheck shell=bash
# Writes an OCI image layout tar from a root file system directory, by hand:
# one uncompressed layer, its config, a manifest and an index whose
# `io.containerd.image.name` annotation names the image for `ctr images
# import`. Tars are written with fixed owners, modes as found and mtime 0, so
# the same tree gives the same digest. Sourced by scripts/build-image.

_oci_tar() {  # <dir> <out> <paths...>
  local dir="$1" out="$2"; shift 2
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$dir" -cf "$out" "$@"
}

_oci_blob() {  # <layout dir> <file>: moves file into blobs, prints "<digest> <size>"
  local sum size
  sum=$(sha256sum "$2" | cut -d' ' -f1) || return 1
  size=$(stat -c %s "$2")
  mv "$2" "$1/blobs/sha256/$sum"
  echo "sha256:$sum $size"
}

# oci_pack <rootfs> <name:tag> <image config json> <out.tar>
# Prints the manifest digest.
oci_pack() {
  local rootfs="$1" name="$2" cfg="$3" out="$4" w
  w=$(mktemp -d "$out.build.XXXXXX") || return 1
  mkdir -p "$w/blobs/sha256"
  # `|| exit 1` after each step: `set -e` does not hold if the caller tests us.
  (
    set -eo pipefail
    _oci_tar "$rootfs" "$w/layer" . || exit 1
    read -r ldig lsize < <(_oci_blob "$w" "$w/layer") && [ -n "$lsize" ] || exit 1
    jq -cn --argjson c "$cfg" --arg d "$ldig" '{
      architecture: "amd64", os: "linux", config: $c,
      rootfs: {type: "layers", diff_ids: [$d]},
      history: [{created_by: "scripts/build-image"}]}' | tr -d '\n' >"$w/config" || exit 1
    read -r cdig csize < <(_oci_blob "$w" "$w/config") && [ -n "$csize" ] || exit 1
    jq -cn --arg cd "$cdig" --argjson cs "$csize" --arg ld "$ldig" --argjson ls "$lsize" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]}' |
      tr -d '\n' >"$w/manifest" || exit 1
    read -r mdig msize < <(_oci_blob "$w" "$w/manifest") && [ -n "$msize" ] || exit 1
    jq -cn --arg md "$mdig" --argjson ms "$msize" --arg name "$name" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
        annotations: {"io.containerd.image.name": $name,
          "org.opencontainers.image.ref.name": ($name | sub("^.*:"; ""))}}]}' >"$w/index.json" ||
      exit 1
    printf '{"imageLayoutVersion":"1.0.0"}' >"$w/oci-layout"
    _oci_tar "$w" "$out.tmp" oci-layout index.json blobs && mv "$out.tmp" "$out" || exit 1
    echo "$mdig"
  )
  local rc=$?
  rm -rf "$w"
  return $rc
}
