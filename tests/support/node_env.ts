/**
 * A CSI node to drive over gRPC, the way kubelet drives it: a real
 * `s3csi node` (with `--controller`) against a fresh MinIO, a temporary
 * kubelet directory, targets under `<kubelet>/pods/<uid>/...`, and
 * everything stopped, unmounted and removed afterwards.
 *
 * @module
 */
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { CsiClient, mountCapability } from "./csi_client.ts";
import { type DriverProcess, spawnNode } from "./driver.ts";
import { detachFuseMountsUnder } from "./helpers.ts";
import { minioClientConfig, type MinioServer, startMinio } from "./minio.ts";

export const PLUGIN = "plugins/s3.csi.scality.com";

export interface NodeEnv {
  minio: MinioServer;
  driver: DriverProcess;
  csi: CsiClient;
  s3: AwsObjectClient;
  kubelet: string;
  /** The node's per-mount state directories live here. */
  stateRoot: string;
  secrets: Record<string, string>;
}

/** A pod's target path for volume `pv`. */
export function target(kubelet: string, pod: string, pv = "pv-1"): string {
  return `${kubelet}/pods/${pod}/volumes/kubernetes.io~csi/${pv}/mount`;
}

export async function withNode(
  fn: (env: NodeEnv) => Promise<void>,
  args: string[] = [],
): Promise<void> {
  const minio = await startMinio();
  const { driver, kubelet, socket } = await spawnNode(minio, "test-node", [
    "--controller",
    ...args,
  ]);
  const csi = new CsiClient(socket);
  const s3 = new AwsObjectClient(minioClientConfig(minio));
  const secrets = { access_key_id: minio.accessKeyId, secret_access_key: minio.secretAccessKey };
  const stateRoot = `${kubelet}/${PLUGIN}/state`;
  try {
    await fn({ minio, driver, csi, s3, kubelet, stateRoot, secrets });
  } finally {
    csi.close();
    await driver.stop();
    await detachFuseMountsUnder(kubelet);
    await new Deno.Command("pkill", { args: ["-f", stateRoot] }).output();
    await minio.stop();
    await Deno.remove(kubelet, { recursive: true }).catch(() => {});
  }
}

/** A NodePublishVolume request of a writable mount. */
export function publishReq(
  volumeId: string,
  context: Record<string, string>,
  tgt: string,
  extra: Record<string, unknown> = {},
) {
  return {
    volume_id: volumeId,
    target_path: tgt,
    volume_capability: mountCapability(),
    volume_context: context,
    readonly: false,
    ...extra,
  };
}

/** The pid of the mount server of the only mount under `stateRoot`. */
export async function serverPid(stateRoot: string): Promise<number> {
  const ids = [...Deno.readDirSync(stateRoot)].map((e) => e.name);
  if (ids.length !== 1) throw new Error(`expected one mount state directory, found ${ids.length}`);
  const pid = Number((await Deno.readTextFile(`${stateRoot}/${ids[0]}/pid`)).trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no pid recorded in "${ids[0]}"`);
  return pid;
}
