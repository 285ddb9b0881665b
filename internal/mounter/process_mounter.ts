/**
 * The `process` Mounter: one `s3csi mount` child process per source mount.
 *
 * The node opens /dev/fuse and does the FUSE mount(2) on the source
 * directory itself (it holds the privileges; the child needs none), then
 * starts `s3csi mount <bucket> /dev/fd/N --foreground …` with that fd. Deno
 * cannot hand arbitrary fds to a child, so the fd's close-on-exec flag is
 * cleared only around the synchronous `spawn()` call: the child inherits
 * exactly that fd and nothing else of ours. Once the child reports ready
 * (one line on stdout), the node closes its copy, so the connection lives
 * exactly as long as the child: if the child dies, the mount turns stale
 * (ENOTCONN) and the next publish cleans and remounts it, instead of
 * leaving requests hanging on a connection nobody serves.
 *
 * Private state per mount lives in `stateDir` (mode 0700): the credentials
 * file the child reads (rewritten on every publish, which is how a rotated
 * secret reaches a running mount), the child's log file, and its pid.
 * Credentials never appear in argv or in logs.
 *
 * @module
 */
import type { S3Connection } from "../cli/mod.ts";
import { FailedPreconditionError, InternalError } from "../errors/mod.ts";
import { checkMount, unmount } from "../fuse/mod.ts";
import { log as rootLog } from "../log/mod.ts";
import { writeCredentialsFile } from "../mount/credentials.ts";
import { CREDENTIALS_FILE, CREDENTIALS_PROFILE, METRICS_SOCKET } from "../podmount/contract.ts";
import { recordMetricsSource } from "./metrics_sources.ts";
import { close as sysClose, setCloexec } from "../sys/libc.ts";
import type { Mounter, MountSpec } from "./mounter.ts";
import {
  detachSource,
  mountSource,
  prepareStateDir,
  sourceMountArgs,
  tuneSource,
} from "./source.ts";

const log = rootLog.with({ component: "mounter" });

/** The driver's S3 connection, passed to every mount, and how to run them. */
export interface ProcessMounterConfig extends S3Connection {
  /** How to run s3csi: e.g. [Deno.execPath(), "run", "-A", "/app/main.ts"] or ["/bin/s3csi"]. */
  command: string[];
  /** How long a mount may take to become ready. */
  startTimeoutMs?: number;
}

async function readTail(path: string, maxLines: number): Promise<string[]> {
  try {
    const lines = (await Deno.readTextFile(path)).trim().split("\n");
    return lines.slice(-maxLines);
  } catch {
    return [];
  }
}

/** The most useful explanation of a failed start: the child's own error lines. */
function explain(stderr: string, logTail: string[]): string {
  const plain = stderr.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("{"));
  const fromStderr = plain.find((l) => l.startsWith("s3csi mount:")) ?? plain.at(-1);
  if (fromStderr) return fromStderr.replace(/^s3csi mount:\s*/, "");
  for (const l of logTail.reverse()) {
    try {
      const rec = JSON.parse(l);
      if (rec.level === "error") {
        return String(rec.msg) + (rec.error ? `: ${JSON.stringify(rec.error)}` : "");
      }
    } catch {
      // not JSON
    }
  }
  return "the mount process exited without an explanation";
}

export class ProcessMounter implements Mounter {
  readonly #config: ProcessMounterConfig;
  readonly #children = new Map<string, Deno.ChildProcess>();

  constructor(config: ProcessMounterConfig) {
    this.#config = config;
  }

  async ensureMounted(spec: MountSpec): Promise<void> {
    await prepareStateDir(spec.stateDir);
    const credsFile = `${spec.stateDir}/${CREDENTIALS_FILE}`;
    if (spec.credentials) {
      await writeCredentialsFile(credsFile, CREDENTIALS_PROFILE, spec.credentials);
    }
    const health = await checkMount(spec.sourceDir);
    if (health === "ok") return;
    if (health === "stale") {
      // Clear the dead mount before touching the directory: stat/mkdir on it fail with ENOTCONN.
      log.warn("source mount is dead: remounting", { source: spec.sourceDir });
      unmount(spec.sourceDir, { lazy: true });
      await this.#killRecorded(spec.stateDir);
    }
    await this.#start(spec, spec.credentials ? credsFile : undefined);
  }

  async #start(spec: MountSpec, credsFile: string | undefined): Promise<void> {
    const mlog = log.with({ volume: spec.volumeId, mount: spec.mountId, source: spec.sourceDir });
    const fd = await mountSource(spec);
    const args = [
      "mount",
      spec.bucket,
      `/dev/fd/${fd}`,
      "--foreground",
      "--log-file",
      `${spec.stateDir}/mount.log`,
      "--metrics-socket",
      `${spec.stateDir}/${METRICS_SOCKET}`,
      ...sourceMountArgs(spec, this.#config),
    ];
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      NO_COLOR: "1",
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_CONFIG_FILE: `${spec.stateDir}/config`,
    };
    for (const k of ["DENO_DIR", "S3CSI_VERSION"]) {
      const v = Deno.env.get(k);
      if (v) env[k] = v;
    }
    if (credsFile) {
      env.AWS_SHARED_CREDENTIALS_FILE = credsFile;
      env.AWS_PROFILE = CREDENTIALS_PROFILE;
    }
    const [exe, ...pre] = this.#config.command;
    let child: Deno.ChildProcess;
    // No await between clearing and restoring close-on-exec: no other spawn can interleave.
    setCloexec(fd, false);
    try {
      child = new Deno.Command(exe, {
        args: [...pre, ...args],
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      setCloexec(fd, true);
      sysClose(fd);
      unmount(spec.sourceDir, { lazy: true });
      throw new InternalError(`Cannot start the mount process: ${(err as Error).message}`, {
        cause: err,
      });
    }
    setCloexec(fd, true);
    let stderr = "";
    const dec = new TextDecoder();
    const stderrDone = (async () => {
      try {
        for await (const c of child.stderr) stderr += dec.decode(c, { stream: true });
      } catch {
        // child gone
      }
    })();
    const ready = await this.#waitReady(child, this.#config.startTimeoutMs ?? 60_000);
    sysClose(fd);
    if (ready !== "ready") {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await child.status;
      await stderrDone;
      unmount(spec.sourceDir, { lazy: true });
      const why = ready === "timeout"
        ? "it did not become ready in time"
        : explain(stderr, await readTail(`${spec.stateDir}/mount.log`, 20));
      mlog.error("mount process failed", { reason: why });
      throw new FailedPreconditionError(
        `Cannot mount bucket "${spec.bucket}" for volume "${spec.volumeId}": ${why}`,
      );
    }
    await Deno.writeTextFile(`${spec.stateDir}/pid`, `${child.pid}\n`);
    await recordMetricsSource(spec.stateDir, spec.volumeId, `${spec.stateDir}/${METRICS_SOCKET}`);
    this.#children.set(spec.sourceDir, child);
    child.status.then((s) => {
      this.#children.delete(spec.sourceDir);
      mlog.info("mount process exited", { code: s.code, signal: s.signal });
    });
    child.unref();
    await tuneSource(spec.sourceDir, mlog);
    mlog.info("mount process started", { pid: child.pid, bucket: spec.bucket });
  }

  async #waitReady(
    child: Deno.ChildProcess,
    timeoutMs: number,
  ): Promise<"ready" | "exited" | "timeout"> {
    const reader = child.stdout.getReader();
    let out = "";
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) =>
      timer = setTimeout(() => r("timeout"), timeoutMs)
    );
    const readLine = (async (): Promise<"ready" | "exited"> => {
      while (!out.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) return "exited";
        out += new TextDecoder().decode(value);
      }
      return "ready";
    })();
    const result = await Promise.race([readLine, timeout]);
    clearTimeout(timer);
    // Keep draining stdout so the child can never block on a full pipe.
    (async () => {
      try {
        while (!(await reader.read()).done) { /* discard */ }
      } catch {
        // child gone
      }
    })();
    return result;
  }

  async unmount(sourceDir: string, stateDir: string): Promise<void> {
    detachSource(sourceDir);
    // The child sees ENODEV, completes pending uploads and exits by itself.
    const child = this.#children.get(sourceDir);
    if (child) {
      const exited = await Promise.race([
        child.status.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 30_000)),
      ]);
      if (!exited) {
        log.warn("mount process did not exit after unmount: killing it", { source: sourceDir });
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
      }
    } else {
      await this.#killRecorded(stateDir);
    }
    await Deno.remove(sourceDir).catch(() => {});
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }

  /** Kills a mount process recorded by an earlier node instance, if still alive. */
  async #killRecorded(stateDir: string): Promise<void> {
    let pid: number;
    try {
      pid = Number((await Deno.readTextFile(`${stateDir}/pid`)).trim());
    } catch {
      return;
    }
    if (!Number.isInteger(pid) || pid <= 1) return;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
      if (!cmdline.includes("mount")) return;
      Deno.kill(pid, "SIGTERM");
      for (let i = 0; i < 100; i++) {
        await new Promise((r) => setTimeout(r, 100));
        await Deno.stat(`/proc/${pid}`);
      }
      Deno.kill(pid, "SIGKILL");
    } catch {
      // not running any more
    }
  }
}
