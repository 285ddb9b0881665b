/**
 * The `process` Mounter: one `s3csi mount` child process per source mount,
 * and a replacement when it dies.
 *
 * The node opens /dev/fuse and does the FUSE mount(2) on the source
 * directory itself (it holds the privileges; the child needs none). It
 * keeps that fd, the keeper, for as long as the volume is mounted, and
 * starts `s3csi mount <bucket> /dev/fd/N --foreground --journal … …` on a
 * clone of it (`cloneFuseFd`). Deno cannot hand arbitrary fds to a child,
 * so the clone's close-on-exec flag is cleared only around the synchronous
 * `spawn()` call: the child inherits exactly that fd and nothing else of
 * ours.
 *
 * Why a keeper. The kernel aborts a FUSE connection only when its last fd
 * closes, so while the node holds one, a child that dies (a crash, an OOM
 * kill) costs the workload only the calls that child had read: they fail
 * once; new calls wait in the kernel. The node sees the exit and starts a
 * successor on a new clone with `--take-over` and the same state directory,
 * whose journal tells it what the kernel holds (internal/takeover). The
 * workload's mount never turns into ENOTCONN. Replacements are bounded
 * (`MAX_RESTARTS` within `RESTART_WINDOW_MS`); past that, or when a
 * successor cannot start, the node closes the keeper: the mount turns stale
 * and the next publish remounts it, as it would without takeover.
 *
 * Unmount detaches the source; the kernel then ends the connection whatever
 * fds remain, the child sees ENODEV, completes pending uploads and exits,
 * and only then is the keeper closed.
 *
 * Private state per mount lives in `stateDir` (mode 0700): the credentials
 * file the child reads (rewritten on every publish, which is how a rotated
 * secret reaches a running mount), the child's log file, its pid and its
 * takeover journal. Credentials never appear in argv or in logs.
 *
 * A node that restarts has lost its keepers, while the servers it started
 * go on. `recover()` (at start) finds each mount it left through the spec
 * saved in its state directory and takes a keeper back from the server's
 * keeper socket (internal/takeover/keeper.ts); that socket's connection
 * closing is how the node learns that a server it did not start died, and
 * from then on the mount is served as if the node had never restarted.
 *
 * Upgrades. `handOver()` replaces a live mount's server on purpose: the
 * server hands over (run.ts: it waits a bounded time for files being
 * written, answers what it read, exits) and a server of this node's
 * version continues the connection from the journal, with no failed call.
 * With `upgradeMounts`, a node that restarted as a new version does this
 * at `recover()` for every server of another version, one at a time.
 *
 * @module
 */
import type { S3Connection } from "../cli/mod.ts";
import { FailedPreconditionError, InternalError } from "../errors/mod.ts";
import { checkMount, cloneFuseFd, unmount } from "../fuse/mod.ts";
import { log as rootLog } from "../log/mod.ts";
import { writeCredentialsFile } from "../mount/credentials.ts";
import { CREDENTIALS_FILE, CREDENTIALS_PROFILE, METRICS_SOCKET } from "../podmount/contract.ts";
import { recordMetricsSource } from "./metrics_sources.ts";
import { close as sysClose, setCloexec } from "../sys/libc.ts";
import { type Reclaimed, reclaimKeeper } from "../takeover/keeper.ts";
import { VERSION } from "../version.ts";
import type { Mounter, MountSpec } from "./mounter.ts";
import {
  detachSource,
  mountSource,
  prepareStateDir,
  sourceMountArgs,
  tuneSource,
} from "./source.ts";

const log = rootLog.with({ component: "mounter" });

/** Replacements of one mount's server allowed within `RESTART_WINDOW_MS`. */
export const MAX_RESTARTS = 5;
export const RESTART_WINDOW_MS = 60_000;
/** The takeover journal's file in a mount's state directory. */
export const JOURNAL_FILE = "journal";

/** The spec of a mount, saved for a node that restarts (credentials live in their own file). */
const SPEC_FILE = "spec.json";

/** One source mount this node serves: the keeper fd and the server on a clone of it. */
interface Served {
  readonly spec: MountSpec;
  readonly credsFile: string | undefined;
  readonly keeper: number;
  /** The server: a child of this node, or one an earlier node started (watched through its socket). */
  child: Deno.ChildProcess | Reclaimed | null;
  /** When each replacement started, for the bound. */
  restarts: number[];
  unmounting: boolean;
  closed: boolean;
  /** A planned hand-over under way: settled once the successor serves (or the mount was given up). */
  handOver?: PromiseWithResolvers<void>;
}

/** The driver's S3 connection, passed to every mount, and how to run them. */
export interface ProcessMounterConfig extends S3Connection {
  /** How to run s3csi: e.g. [Deno.execPath(), "run", "-A", "/app/main.ts"] or ["/bin/s3csi"]. */
  command: string[];
  /** How long a mount may take to become ready. */
  startTimeoutMs?: number;
  /**
   * At `recover()`, hand each mount whose server runs another driver
   * version over to a server of this version, one at a time.
   */
  upgradeMounts?: boolean;
}

/** How long a hand-over may take: the server's wait for writers (its default), then the successor's start. */
const HAND_OVER_TIMEOUT_MS = 25_000;

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
  readonly #served = new Map<string, Served>();

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
    this.#forget(spec.sourceDir);
    const keeper = await mountSource(spec);
    const served: Served = {
      spec,
      credsFile: spec.credentials ? credsFile : undefined,
      keeper,
      child: null,
      restarts: [],
      unmounting: false,
      closed: false,
    };
    try {
      await this.#spawn(served, false);
    } catch (err) {
      this.#closeKeeper(served);
      unmount(spec.sourceDir, { lazy: true });
      throw err;
    }
    this.#served.set(spec.sourceDir, served);
    const { credentials: _secret, ...saved } = spec;
    await Deno.writeTextFile(`${spec.stateDir}/${SPEC_FILE}`, JSON.stringify(saved), {
      mode: 0o600,
    });
    await tuneSource(spec.sourceDir, this.#log(spec));
  }

  /**
   * At start: takes back a keeper of every mount an earlier node left
   * serving under `stateRoot`, so that their servers are replaced again
   * when they die. A mount that cannot be reclaimed (no spec, a dead
   * mount, an older server without a keeper socket) is left as it is: the
   * next publish or unpublish of its volume deals with it.
   */
  async recover(stateRoot: string): Promise<void> {
    let dirs: string[];
    try {
      dirs = [...Deno.readDirSync(stateRoot)].filter((e) => e.isDirectory).map((e) => e.name);
    } catch {
      return; // nothing mounted yet
    }
    await Promise.all(dirs.map((d) => this.#reclaim(`${stateRoot}/${d}`)));
    // In the background: the node serves meanwhile, and each hand-over is bounded.
    if (this.#config.upgradeMounts) this.#upgradeAll();
  }

  async #upgradeAll(): Promise<void> {
    for (const served of [...this.#served.values()]) {
      const child = served.child;
      if (!child || !("gone" in child) || child.version === VERSION) continue;
      this.#log(served.spec).info("upgrading a mount: handing it over to this version", {
        from: child.version || "unknown",
        to: VERSION,
      });
      await this.handOver(served.spec.sourceDir);
    }
  }

  /**
   * A planned hand-over of a live mount to a new server of this node's
   * version (an upgrade): the server is asked to hand over (SIGTERM: it
   * waits for files being written, answers what it read, exits with its
   * journal complete), and the successor continues the connection with
   * `--take-over`. No call fails; a file still being written after the
   * server's wait fails with EIO. Resolves once the successor serves, or
   * the mount was given up; false when there is nothing to hand over.
   */
  async handOver(sourceDir: string): Promise<boolean> {
    const served = this.#served.get(sourceDir);
    const child = served?.child;
    if (!served || !child || served.closed || served.unmounting) return false;
    if (served.handOver) {
      await served.handOver.promise;
      return true;
    }
    served.handOver = Promise.withResolvers<void>();
    try {
      Deno.kill(child.pid, "SIGTERM");
    } catch {
      // already gone: its exit is on its way to #exited
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finished = await Promise.race([
      served.handOver.promise.then(() => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), HAND_OVER_TIMEOUT_MS)),
    ]).finally(() => clearTimeout(timer));
    if (!finished) {
      this.#log(served.spec).warn("the mount server did not hand over in time: killing it", {
        pid: child.pid,
      });
      try {
        Deno.kill(child.pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
      await served.handOver.promise;
    }
    return true;
  }

  async #reclaim(stateDir: string): Promise<void> {
    let spec: MountSpec;
    try {
      spec = JSON.parse(await Deno.readTextFile(`${stateDir}/${SPEC_FILE}`));
    } catch {
      return;
    }
    const mlog = this.#log(spec);
    if (this.#served.has(spec.sourceDir) || (await checkMount(spec.sourceDir)) !== "ok") return;
    let got: Reclaimed;
    try {
      got = await reclaimKeeper(stateDir);
    } catch (err) {
      mlog.warn(
        "cannot take back the keeper of a running mount: it will not be replaced if it dies",
        {
          error: err,
        },
      );
      return;
    }
    const credsFile = `${stateDir}/${CREDENTIALS_FILE}`;
    const hasCreds = await Deno.stat(credsFile).then(() => true, () => false);
    const served: Served = {
      spec,
      credsFile: hasCreds ? credsFile : undefined,
      keeper: got.keeper,
      child: got,
      restarts: [],
      unmounting: false,
      closed: false,
    };
    this.#served.set(spec.sourceDir, served);
    got.gone.then(() => this.#exited(served, got, "gone"));
    mlog.info("took back the keeper of a running mount", { pid: got.pid });
  }

  #log(spec: MountSpec) {
    return log.with({ volume: spec.volumeId, mount: spec.mountId, source: spec.sourceDir });
  }

  /**
   * Starts a server on a new clone of the keeper and waits for its ready
   * line; `takeOver`: the connection is live and the server continues it
   * from the journal. Throws FailedPrecondition with the child's own
   * explanation when it does not become ready.
   */
  async #spawn(served: Served, takeOver: boolean): Promise<void> {
    const { spec } = served;
    const mlog = this.#log(spec);
    const fd = cloneFuseFd(served.keeper);
    const args = [
      "mount",
      spec.bucket,
      `/dev/fd/${fd}`,
      "--foreground",
      "--log-file",
      `${spec.stateDir}/mount.log`,
      "--metrics-socket",
      `${spec.stateDir}/${METRICS_SOCKET}`,
      "--journal",
      `${spec.stateDir}/${JOURNAL_FILE}`,
      "--keeper-dir",
      spec.stateDir,
      ...(takeOver ? ["--take-over"] : []),
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
    if (served.credsFile) {
      env.AWS_SHARED_CREDENTIALS_FILE = served.credsFile;
      env.AWS_PROFILE = CREDENTIALS_PROFILE;
    }
    const [exe, ...pre] = this.#config.command;
    let child: Deno.ChildProcess;
    // No await between clearing close-on-exec and closing: no other spawn can interleave.
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
      throw new InternalError(`Cannot start the mount process: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      // The child has its own copy; ours would keep the connection for nobody.
      sysClose(fd);
    }
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
    if (ready !== "ready") {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await child.status;
      await stderrDone;
      const why = ready === "timeout"
        ? "it did not become ready in time"
        : explain(stderr, await readTail(`${spec.stateDir}/mount.log`, 20));
      mlog.error("mount process failed", { reason: why, takeOver });
      throw new FailedPreconditionError(
        `Cannot mount bucket "${spec.bucket}" for volume "${spec.volumeId}": ${why}`,
      );
    }
    // Renamed into place: a reader never sees the file empty.
    await Deno.writeTextFile(`${spec.stateDir}/pid.tmp`, `${child.pid}\n`);
    await Deno.rename(`${spec.stateDir}/pid.tmp`, `${spec.stateDir}/pid`);
    await recordMetricsSource(spec.stateDir, spec.volumeId, `${spec.stateDir}/${METRICS_SOCKET}`);
    served.child = child;
    child.status.then((s) => this.#exited(served, child, s));
    child.unref();
    mlog.info(takeOver ? "mount process replaced" : "mount process started", {
      pid: child.pid,
      bucket: spec.bucket,
    });
  }

  /** A server exited: replace it unless the mount is going away or has been replaced too often. */
  async #exited(
    served: Served,
    child: Deno.ChildProcess | Reclaimed,
    s: Deno.CommandStatus | "gone",
  ): Promise<void> {
    const mlog = this.#log(served.spec);
    const how = s === "gone"
      ? { pid: (child as Reclaimed).pid }
      : { code: s.code, signal: s.signal };
    if (served.child !== child) return;
    mlog.info("mount process exited", how);
    served.child = null;
    if (served.unmounting || served.closed) {
      served.handOver?.resolve();
      return;
    }
    const planned = served.handOver;
    if (planned) {
      served.handOver = undefined;
      try {
        await this.#spawn(served, true);
        mlog.info("mount handed over", { version: VERSION });
      } catch (err) {
        mlog.error("the successor of a hand-over cannot start: giving up the mount", {
          error: err,
        });
        this.#closeKeeper(served);
      }
      planned.resolve();
      return;
    }
    const now = Date.now();
    served.restarts = served.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (served.restarts.length >= MAX_RESTARTS) {
      mlog.error("mount process keeps dying: giving up the mount", {
        restarts: served.restarts.length,
        windowSeconds: RESTART_WINDOW_MS / 1000,
      });
      this.#closeKeeper(served);
      return;
    }
    served.restarts.push(now);
    mlog.warn("mount process died: a replacement takes over the live mount", how);
    try {
      await this.#spawn(served, true);
    } catch (err) {
      mlog.error("cannot replace the mount process: giving up the mount", { error: err });
      this.#closeKeeper(served);
    }
  }

  /** Lets the connection go: with no server left, the kernel ends it and the mount turns stale. */
  #closeKeeper(served: Served): void {
    if (served.closed) return;
    served.closed = true;
    served.handOver?.resolve();
    if (served.child && "gone" in served.child) served.child.release();
    sysClose(served.keeper);
    if (this.#served.get(served.spec.sourceDir) === served) {
      this.#served.delete(served.spec.sourceDir);
    }
  }

  /** Drops what this node held of an earlier mount on `sourceDir` (stale, or served by an earlier node). */
  #forget(sourceDir: string): void {
    const old = this.#served.get(sourceDir);
    if (!old) return;
    old.unmounting = true;
    this.#closeKeeper(old);
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
    const served = this.#served.get(sourceDir);
    if (served) served.unmounting = true;
    detachSource(sourceDir);
    // The kernel ends the connection: the child sees ENODEV, completes pending uploads and exits.
    const child = served?.child;
    if (child) {
      const ended = "gone" in child ? child.gone : child.status;
      const exited = await Promise.race([
        ended.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 30_000)),
      ]);
      if (!exited) {
        log.warn("mount process did not exit after unmount: killing it", { source: sourceDir });
        try {
          if ("gone" in child) Deno.kill(child.pid, "SIGKILL");
          else child.kill("SIGKILL");
        } catch {
          // gone
        }
      }
    } else {
      await this.#killRecorded(stateDir);
    }
    if (served) this.#closeKeeper(served);
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
