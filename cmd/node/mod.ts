/**
 * `s3csi node`: CSI Identity + Node on a unix socket (optionally Controller
 * too, for single-process setups). Wiring only: flags → NodeConfig.
 *
 * @module
 */
import {
  bool,
  CSI_ROLE_FLAGS,
  type FlagSpecs,
  logLevel,
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
import { credentialsFromEnv } from "../../internal/s3/credentials.ts";
import { log, setLevel } from "../../internal/log/mod.ts";
import { PodMounter } from "../../internal/mounter/pod_mounter.ts";
import { ProcessMounter } from "../../internal/mounter/process_mounter.ts";
import { kubeAttachmentLookup } from "../../internal/podmount/attachment_lookup.ts";
import { BindTargetOps } from "../../internal/mounter/target_ops.ts";
import { ClientCache } from "../../internal/s3/client_cache.ts";

export const summary = "Serve CSI Identity + Node (mount volumes into pods)";

const FLAGS: FlagSpecs = {
  ...CSI_ROLE_FLAGS,
  "node-id": {
    type: "string",
    env: "CSI_NODE_ID",
    help: "This node's name (default: KUBE_NODE_NAME or the hostname)",
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
};

function fuseAvailable(): Promise<boolean> {
  return Deno.stat("/dev/fuse").then((s) => s.isCharDevice ?? true, () => false);
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, FLAGS);
  if (bool(values, "help")) {
    console.log(usage("s3csi node [options]", FLAGS));
    return 0;
  }
  setLevel(logLevel(values));
  const nodeId = str(values, "node-id") ?? Deno.env.get("KUBE_NODE_NAME") ?? Deno.hostname();
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
    : new ProcessMounter({ ...s3, command: selfCommand(), startTimeoutMs: timeoutMs });
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
  const identity = new IdentityServer({ controllerService: withController, ready: fuseAvailable });
  const server = new CsiServer({
    identity: identity.handlers(),
    node: node.handlers(),
    ...(controller ? { controller: controller.handlers() } : {}),
  });
  const done = shutdownSignal();
  await server.listen(str(values, "endpoint")!);
  log.info("node started", {
    nodeId,
    kubeletPath: str(values, "kubelet-path"),
    mounter: str(values, "mounter"),
    controller: withController,
  });
  const signal = await done;
  // Mount processes are not stopped here: outside a container they outlive the plugin and are
  // found again through the mount table. Inside a container they end with it, and the next
  // publish of each target replaces the dead mount (the pod mounter will lift that limit).
  log.info("shutting down", { signal });
  await server.stop();
  return 0;
}
