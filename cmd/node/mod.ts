/**
 * `s3csi node`: CSI Identity + Node on a unix socket (optionally Controller
 * too, for single-process setups), and what a node plugin offers the kubelet
 * without sidecars: `/healthz`, the plugin-registration socket, and the
 * removal of the startup taint. Wiring only: flags → configs.
 *
 * @module
 */
import {
  bool,
  CSI_ROLE_FLAGS,
  type FlagSpecs,
  type FlagValues,
  logLevel,
  metricsAddress,
  num,
  oneOf,
  parseFlags,
  s3Connection,
  selfCommand,
  shutdownSignal,
  str,
  uint,
  usage,
} from "../../internal/cli/mod.ts";
import { ControllerServer, CsiServer, IdentityServer, NodeServer } from "../../internal/csi/mod.ts";
import {
  fuseDeviceReadiness,
  HealthServer,
  type ReadinessCheck,
} from "../../internal/csi/health.ts";
import { defaultKubeletEndpoint, RegistrationServer } from "../../internal/csi/registration.ts";
import { socketPath } from "../../internal/csi/server.ts";
import { removeStartupTaintFromEnv } from "../../internal/kube/node_taint.ts";
import { credentialsFromEnv } from "../../internal/s3/credentials.ts";
import { log, setLevel } from "../../internal/log/mod.ts";
import { PodMounter } from "../../internal/mounter/pod_mounter.ts";
import { ProcessMounter } from "../../internal/mounter/process_mounter.ts";
import { kubeAttachmentLookup } from "../../internal/podmount/attachment_lookup.ts";
import { BindTargetOps } from "../../internal/mounter/target_ops.ts";
import { ClientCache } from "../../internal/s3/client_cache.ts";
import { DRIVER_NAME } from "../../internal/version.ts";
import { MetricsServer, watch } from "../../internal/metrics/mod.ts";

const FLAGS: FlagSpecs = {
  ...CSI_ROLE_FLAGS,
  "node-id": {
    type: "string",
    env: "CSI_NODE_ID",
    help: "This node's name (default: NODE_NAME or the hostname)",
  },
  "kubelet-path": {
    type: "string",
    default: "/var/lib/kubelet",
    env: "KUBELET_PATH",
    help: "The kubelet root directory",
  },
  mounter: {
    type: "string",
    kind: oneOf(["process", "pod"]),
    default: "process",
    env: "S3CSI_MOUNTER",
    help: "How mounts are served: process (child processes) or pod (Mountpoint Pods)",
  },
  "mount-timeout": {
    type: "string",
    kind: uint({ min: 1, max: 3600 }),
    default: "60",
    help:
      "Seconds a mount may take to become ready (pod: also to find its Mountpoint Pod and socket)",
  },
  controller: { type: "boolean", help: "Also serve the Controller service on the same socket" },
  "upgrade-mounts": {
    type: "boolean",
    help:
      "process mounter: at start, hand each live mount whose server runs another version over to this version, one at a time",
  },
  "kubelet-registration": {
    type: "string",
    kind: oneOf(["true", "false"]),
    default: "true",
    env: "S3CSI_KUBELET_REGISTRATION",
    help: "Register with the kubelet (false where a node-driver-registrar sidecar does it)",
  },
  "kubelet-registration-path": {
    type: "string",
    help: "The CSI socket as the kubelet sees it (default: --endpoint when under --kubelet-path, " +
      `else <kubelet-path>/plugins/${DRIVER_NAME}/csi.sock)`,
  },
  "registration-dir": {
    type: "string",
    help: "Where the kubelet looks for plugin sockets (default: <kubelet-path>/plugins_registry)",
  },
  "health-port": {
    type: "string",
    kind: uint({ max: 65535 }),
    // Off unless asked: a node run by hand or by the tests binds no TCP port.
    default: "0",
    help: "Port of the /healthz endpoint for liveness probes (the manifests use 9808); 0 = off",
  },
  "health-address": {
    type: "string",
    default: "127.0.0.1",
    env: "S3CSI_HEALTH_ADDRESS",
    help: "Address the /healthz endpoint listens on (in a pod: its pod IP)",
  },
  "remove-startup-taint": {
    type: "string",
    kind: oneOf(["true", "false"]),
    default: "true",
    help: "Remove the startup taint from this node's Node once serving",
  },
};

/** The /healthz endpoint, started before any socket so that a port already taken ends the start. */
function startHealth(values: FlagValues, check: ReadinessCheck): HealthServer | undefined {
  const port = num(values, "health-port")!;
  if (port === 0) return undefined;
  const health = new HealthServer({ hostname: str(values, "health-address")!, port, check });
  health.start();
  return health;
}

/**
 * Once the CSI socket serves: registers with the kubelet and removes the
 * startup taint (in the background). `stop` unregisters.
 */
async function announce(
  values: FlagValues,
  nodeId: string,
  endpoint: string,
): Promise<{ stop(): Promise<void> }> {
  const kubeletPath = str(values, "kubelet-path")!;
  const registration = str(values, "kubelet-registration") === "true"
    ? new RegistrationServer({
      driverName: DRIVER_NAME,
      kubeletEndpoint: str(values, "kubelet-registration-path") ??
        defaultKubeletEndpoint(socketPath(endpoint), kubeletPath, DRIVER_NAME),
      registrationDir: str(values, "registration-dir") ?? `${kubeletPath}/plugins_registry`,
    })
    : undefined;
  await registration?.listen();
  const stopping = new AbortController();
  const taint = str(values, "remove-startup-taint") === "true"
    ? removeStartupTaintFromEnv(nodeId, { signal: stopping.signal })
    : undefined;
  return {
    async stop() {
      stopping.abort();
      await registration?.stop();
      await taint;
    },
  };
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, FLAGS);
  if (bool(values, "help")) {
    console.log(usage("s3csi node [options]", FLAGS));
    return 0;
  }
  setLevel(logLevel(values));
  const nodeId = str(values, "node-id") ?? Deno.env.get("NODE_NAME") ?? Deno.hostname();
  // Path-style by default, as the controller; --aws-max-attempts, when given, reaches every mount.
  const s3 = s3Connection(values, true);
  const driverCredentials = credentialsFromEnv();
  const timeoutMs = num(values, "mount-timeout")! * 1000;
  const mounter = str(values, "mounter") === "pod"
    ? new PodMounter({
      ...s3,
      nodeName: nodeId,
      kubeletPath: str(values, "kubelet-path")!,
      lookup: await kubeAttachmentLookup(),
      attachTimeoutMs: timeoutMs,
      startTimeoutMs: timeoutMs,
    })
    : new ProcessMounter({
      ...s3,
      command: selfCommand(),
      startTimeoutMs: timeoutMs,
      upgradeMounts: bool(values, "upgrade-mounts"),
    });
  const node = new NodeServer({
    nodeId,
    kubeletPath: str(values, "kubelet-path")!,
    mounter,
    targets: new BindTargetOps(),
    ...(driverCredentials ? { driverCredentials } : {}),
  });
  const withController = bool(values, "controller");
  let controller: ControllerServer | undefined;
  if (withController) {
    const clients = new ClientCache({ ...s3, driverCredentials });
    controller = new ControllerServer({ region: s3.region, clientFactory: clients.factory() });
  }
  const readiness = fuseDeviceReadiness();
  const identity = new IdentityServer({
    controllerService: withController,
    ready: async () => (await readiness()).ready,
  });
  const server = new CsiServer({
    identity: identity.handlers(),
    node: node.handlers(),
    ...(controller ? { controller: controller.handlers() } : {}),
  });
  const endpoint = str(values, "endpoint")!;
  const health = startHealth(values, readiness);
  const metricsAt = metricsAddress(values);
  const metrics = metricsAt ? new MetricsServer(metricsAt, () => node.metricsSources()) : undefined;
  watch("mounts", async () => (await node.metricsSources()).length);
  const done = shutdownSignal();
  await node.recover();
  await server.listen(endpoint);
  const kubelet = await announce(values, nodeId, endpoint);
  log.info("node started", {
    nodeId,
    kubeletPath: str(values, "kubelet-path"),
    mounter: str(values, "mounter"),
    controller: withController,
  });
  const signal = await done;
  // Mount processes are not stopped here: outside a container they outlive the plugin, and the
  // next node instance takes their keepers back (`recover`). Inside a container they end with
  // it, and the next publish of each target replaces the dead mount.
  log.info("shutting down", { signal });
  // Unregister first: the kubelet stops sending calls to a plugin whose socket is gone.
  await kubelet.stop();
  await server.stop();
  await health?.stop();
  await metrics?.stop();
  return 0;
}
