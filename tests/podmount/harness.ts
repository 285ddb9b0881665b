/**
 * A "Mountpoint Pod" without Kubernetes: `s3csi mount --from-socket` started
 * as a child process in a comm directory laid out as the kubelet lays out an
 * emptyDir (`hostCommDir`), and a `PodMounter` whose attachment lookup is a
 * fake that names that pod.
 *
 * When the tests run as root, the server runs as uid/gid 1000 with no
 * supplementary groups and no capabilities (`setpriv`), as a restricted pod
 * would: the comm directory belongs to that user, the Deno binary is linked
 * into a directory it can read, and it gets a Deno cache of its own and the
 * project's node_modules as they are (`--node-modules-dir=manual`, so
 * nothing is fetched).
 *
 * @module
 */
import { parseMountOptions } from "../../internal/mounter/mount_options.ts";
import type { MountSpec } from "../../internal/mounter/mounter.ts";
import { PodMounter, type PodMounterConfig } from "../../internal/mounter/pod_mounter.ts";
import type {
  AttachmentLookup,
  AttachmentQuery,
  MountpointPodRef,
} from "../../internal/podmount/attachment_lookup.ts";
import { hostCommDir, SOCKET_NAME } from "../../internal/podmount/contract.ts";
import {
  detachFuseMountsUnder,
  minioClientConfig,
  type MinioServer,
  randomHex,
  startMinio,
  tempDir,
  withTimeout,
} from "../support/mod.ts";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { collectOutput } from "../support/driver.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const REPO = new URL("../../", import.meta.url).pathname;
export const POD_UID = 1000;

export interface MountpointPod {
  name: string;
  uid: string;
  commDir: string;
  pid: number;
  /** Exit code once the process ends. */
  status: Promise<number>;
  output(): string;
  kill(signal: Deno.Signal): void;
}

export interface World {
  kubelet: string;
  mounter: PodMounter;
  /** What the fake lookup answers (undefined: "not yet"). */
  attached: MountpointPodRef | undefined;
  /** The queries the fake lookup was asked. */
  queries: AttachmentQuery[];
  /**
   * Starts a Mountpoint Pod process with a fresh UID and makes the lookup
   * name it; `args` follow `--from-socket <socket>`.
   */
  startPod(env?: Record<string, string>, args?: string[]): Promise<MountpointPod>;
  /**
   * The container of `pod` restarted: a new process of the same pod (name,
   * UID, comm directory), as the kubelet starts after a crash.
   */
  restartPod(pod: MountpointPod, env?: Record<string, string>): MountpointPod;
  spec(overrides: Partial<MountSpec>): MountSpec;
  /** A new node plugin instance: a `PodMounter` of the same configuration (replaces `mounter`). */
  restartNode(): PodMounter;
}

const isRoot = Deno.uid() === 0;

/** A directory the unprivileged server can use: its own Deno cache and a link to the binary. */
async function podRuntime(base: string): Promise<{ deno: string; denoDir: string }> {
  if (!isRoot) return { deno: Deno.execPath(), denoDir: Deno.env.get("DENO_DIR") ?? "" };
  const bin = `${base}/runtime`;
  await Deno.mkdir(bin, { recursive: true });
  const deno = `${bin}/deno`;
  // A hard link shares the inode (mode 0755) without the path through root's home.
  await Deno.link(Deno.execPath(), deno).catch(() => Deno.copyFile(Deno.execPath(), deno));
  await Deno.chmod(deno, 0o755);
  const denoDir = `${bin}/deno-dir`;
  await Deno.mkdir(denoDir, { recursive: true });
  await Deno.chown(denoDir, POD_UID, POD_UID);
  await Deno.chmod(bin, 0o755);
  return { deno, denoDir };
}

function spawnPod(
  commDir: string,
  runtime: { deno: string; denoDir: string },
  env: Record<string, string>,
  extraArgs: string[],
): { child: Deno.ChildProcess; output: () => string; status: Promise<number> } {
  const denoArgs = ["run", "-A", "--node-modules-dir=manual", MAIN, "mount", "--from-socket"];
  const socket = `${commDir}/${SOCKET_NAME}`;
  const [exe, args] = isRoot
    ? [
      "setpriv",
      [
        "--reuid",
        String(POD_UID),
        "--regid",
        String(POD_UID),
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        runtime.deno,
        ...denoArgs,
        socket,
        ...extraArgs,
      ],
    ]
    : [runtime.deno, [...denoArgs, socket, ...extraArgs]];
  const child = new Deno.Command(exe, {
    args,
    cwd: REPO,
    clearEnv: true,
    env: {
      PATH: "/usr/bin:/bin",
      HOME: commDir,
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      AWS_EC2_METADATA_DISABLED: "true",
      ...(runtime.denoDir ? { DENO_DIR: runtime.denoDir } : {}),
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return { child, ...collectOutput(child) };
}

/** Runs `fn` with a fresh MinIO and a client for it; stops both. */
export async function withMinio(fn: (m: MinioServer, s3: AwsObjectClient) => Promise<void>) {
  const minio = await startMinio();
  const s3 = new AwsObjectClient(minioClientConfig(minio));
  try {
    await fn(minio, s3);
  } finally {
    s3.close();
    await minio.stop();
  }
}

/** Runs `fn` in a fresh kubelet directory; cleans up every mount and process it leaves. */
export async function withWorld(
  minio: MinioServer,
  fn: (w: World) => Promise<void>,
  config: Partial<PodMounterConfig> = {},
): Promise<void> {
  const kubelet = await tempDir("s3csi-podmount-");
  // The unprivileged server must be able to reach its comm directory, as under /var/lib/kubelet.
  await Deno.chmod(kubelet, 0o755);
  const runtime = await podRuntime(kubelet);
  const pods: MountpointPod[] = [];
  const queries: AttachmentQuery[] = [];
  const lookup: AttachmentLookup = {
    find(q) {
      queries.push(q);
      return Promise.resolve(world.attached);
    },
  };
  const newMounter = () =>
    new PodMounter({
      region: minio.region,
      endpointUrl: minio.endpoint,
      forcePathStyle: true,
      nodeName: "node-1",
      kubeletPath: kubelet,
      lookup,
      attachTimeoutMs: 30_000,
      startTimeoutMs: 30_000,
      pollMs: 50,
      ...config,
    });
  const mounter = newMounter();
  const run = (
    name: string,
    uid: string,
    commDir: string,
    env: Record<string, string>,
    args: string[],
  ): MountpointPod => {
    const { child, output, status } = spawnPod(commDir, runtime, env, args);
    const pod: MountpointPod = {
      name,
      uid,
      commDir,
      pid: child.pid,
      status,
      output,
      kill: (signal) => {
        try {
          child.kill(signal);
        } catch {
          // already gone
        }
      },
    };
    pods.push(pod);
    return pod;
  };
  const world: World = {
    kubelet,
    mounter,
    attached: undefined,
    queries,
    async startPod(env = {}, args = []) {
      const uid = crypto.randomUUID();
      const name = `mp-${randomHex(4)}`;
      const commDir = hostCommDir(kubelet, uid);
      await Deno.mkdir(commDir, { recursive: true, mode: 0o755 });
      if (isRoot) await Deno.chown(commDir, POD_UID, POD_UID);
      const pod = run(name, uid, commDir, env, args);
      world.attached = { name, uid };
      return pod;
    },
    restartNode() {
      world.mounter = newMounter();
      return world.mounter;
    },
    restartPod(pod, env = {}) {
      return run(pod.name, pod.uid, pod.commDir, env, []);
    },
    spec(overrides) {
      const mountId = randomHex(8);
      return {
        volumeId: "vol-1",
        bucket: "bucket",
        options: parseMountOptions([], { cacheRoot: `${kubelet}/cache` }),
        authenticationSource: "secret",
        sourceDir: `${kubelet}/plugins/s3.csi.scality.com/mnt/${mountId}`,
        stateDir: `${kubelet}/plugins/s3.csi.scality.com/state/${mountId}`,
        mountId,
        workloadPodUid: "workload-1",
        credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
        ...overrides,
      };
    },
  };
  try {
    await fn(world);
  } finally {
    await detachFuseMountsUnder(kubelet);
    for (const p of pods) {
      p.kill("SIGKILL");
      await withTimeout(p.status, 10_000, `Mountpoint Pod ${p.name} exit`).catch(() => {});
    }
    await Deno.remove(kubelet, { recursive: true }).catch(() => {});
  }
}
