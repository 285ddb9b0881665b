/**
 * Runs `s3csi` roles as child processes for integration tests, the way a
 * cluster would: a real process, a real socket, real logs. Each process's
 * stderr (the JSON log) is captured in full so tests can assert on it, for
 * example that no secret ever appears.
 *
 * @module
 */
import { tempDir, withTimeout } from "./helpers.ts";
import { minioEnv, type MinioServer } from "./minio.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

export interface DriverProcess {
  socket: string;
  /** Everything the process wrote to stderr/stdout so far. */
  output(): string;
  /** SIGTERM, wait for the exit; returns the exit code. */
  stop(): Promise<number>;
  /** Resolves with the exit code when the process ends. */
  status: Promise<number>;
}

export interface SpawnOptions {
  args: string[];
  env?: Record<string, string>;
  /** Socket to wait for before resolving (the role's --endpoint). */
  socket: string;
  timeoutMs?: number;
}

/**
 * Collects a piped child's stdout and stderr into one string; `status`
 * resolves with the exit code once both streams are drained.
 */
export function collectOutput(
  child: Deno.ChildProcess,
): { output: () => string; status: Promise<number> } {
  let out = "";
  const dec = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) out += dec.decode(chunk, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    await pumps;
    return s.code;
  });
  return { output: () => out, status };
}

export async function spawnDriver(opts: SpawnOptions): Promise<DriverProcess> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...opts.args],
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  const { output, status } = collectOutput(child);
  let exited = false;
  status.then(() => (exited = true));
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (true) {
    try {
      const st = await Deno.stat(opts.socket);
      if (st.isSocket) break;
    } catch {
      // not there yet
    }
    if (exited) throw new Error(`s3csi ${opts.args[0]} exited before listening:\n${output()}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`s3csi ${opts.args[0]} did not listen on ${opts.socket}:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    socket: opts.socket,
    output,
    status,
    async stop() {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch {
          // already gone
        }
      }
      return await withTimeout(status, 15_000, "driver exit").catch(() => {
        child.kill("SIGKILL");
        return status;
      });
    },
  };
}

/** An `s3csi node` on MinIO, with a kubelet directory of its own. */
export interface NodeProcess {
  driver: DriverProcess;
  /** The temporary kubelet directory (targets go under `<kubelet>/pods/...`). */
  kubelet: string;
  /** The CSI socket, inside `kubelet`. */
  socket: string;
}

/**
 * Starts `s3csi node` against `minio` with a fresh temporary kubelet
 * directory, or `kubelet` (a node restarting); `extraArgs` follow the
 * common ones (e.g. `--controller`).
 */
export async function spawnNode(
  minio: MinioServer,
  nodeId: string,
  extraArgs: string[] = [],
  kubelet?: string,
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  kubelet ??= await tempDir("s3csi-kubelet-");
  const socket = `${kubelet}/csi.sock`;
  const driver = await spawnDriver({
    socket,
    args: [
      "node",
      "--endpoint",
      socket,
      "--kubelet-path",
      kubelet,
      "--s3-endpoint-url",
      minio.endpoint,
      "--node-id",
      nodeId,
      ...extraArgs,
    ],
    env: { ...minioEnv(minio), ...env },
  });
  return { driver, kubelet, socket };
}

/** Parses the JSON log lines of a process output. */
export function logLines(output: string): Array<Record<string, unknown>> {
  return output.split("\n").filter((l) => l.startsWith("{")).map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      return {};
    }
  });
}
