# shellcheck shell=bash
# The configuration files of containerd, the CNI network and the kubelet,
# written into the state directory on every `up` (same input, same files).
# Every path a component would put outside the state directory by default is
# moved into it where the component allows; the others are tracked by
# scripts/cluster (TRACKED_PATHS) and removed on `down`.

write_containerd_config() {
  mkdir -p "$S/containerd" "$S/cni/net.d" "$S/cni/ipam"
  cat >"$S/containerd/config.toml" <<EOF
version = 2
root = "$S/containerd/root"
state = "$S/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # No CAP_SYS_RESOURCE on these machines: lowering oom_score_adj (the kubelet
  # asks -998 for sandboxes) fails and runc init dies. This clamps it to
  # containerd's own score instead.
  restrict_oom_score_adj = true
  max_container_log_line_size = 16384
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/bin/runc"
        Root = "$S/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$S/cni/net.d"
    max_conf_num = 1
EOF
  # A bridge without side effects: no gateway and no masquerading, so the
  # plugin neither turns on ip_forward nor writes iptables rules. The bridge
  # and its address are made by scripts/cluster, so host <-> pod works.
  cat >"$S/cni/net.d/10-s3csi.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "s3csi-test",
  "plugins": [{
    "type": "bridge",
    "bridge": "$BRIDGE",
    "isGateway": false,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "dataDir": "$S/cni/ipam",
      "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP"}]]
    }
  }]
}
EOF
}

write_kubelet_config() {
  mkdir -p "$S/kubelet" "$S/logs/pods"
  cat >"$S/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: "$PKI/kubelet.crt"
tlsPrivateKeyFile: "$PKI/kubelet.key"
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
# 1.34 still accepts cgroup v1 by default; said explicitly for the next minor.
failCgroupV1: false
containerRuntimeEndpoint: "unix://$CTRD_SOCK"
failSwapOn: false
makeIPTablesUtilChains: false
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
serializeImagePulls: false
# Nothing can be pulled again here: never collect images.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# A shared, busy disk must not evict test pods.
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
evictionPressureTransitionPeriod: 10s
nodeStatusUpdateFrequency: 5s
fileCheckFrequency: 5s
syncFrequency: 10s
volumeStatsAggPeriod: 0s
maxPods: 50
podLogsDir: "$S/logs/pods"
# Flex volume plugins (none), else /usr/libexec/kubernetes/kubelet-plugins.
volumePluginDir: "$S/kubelet/volume-plugins"
EOF
}
