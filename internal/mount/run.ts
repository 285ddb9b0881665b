/**
 * The `s3csi mount` process: checks, mounts, serves, and cleans up.
 *
 * Order matters for users: everything that can fail cheaply is checked
 * before anything is mounted (mount point, credentials, bucket reachable and
 * accessible), and each failure is one clear line and a non-zero exit. Only
 * then is the FUSE file system mounted (or, with `/dev/fd/N`, the already
 * mounted connection handed over by the CSI node adopted) and served.
 *
 * When the file system is ready, one line goes to stdout ("mounted …"): the
 * CSI node waits for it, and the daemonising parent relays it.
 *
 * Takeover. With `--journal`, the session records what the kernel holds
 * (internal/takeover). With `--take-over` as well, the `/dev/fd/N`
 * connection is a live one whose server died: the journal is replayed, the
 * file system adopts what it describes, and the session resumes without
 * INIT; the ready line follows as usual. With `--keeper-dir`, the process
 * hands clones of its connection to a CSI node that restarted
 * (internal/takeover/keeper.ts).
 *
 * SIGINT/SIGTERM: a self-mounted file system is detached (lazy unmount, so
 * open files finish) and the session ends when the kernel lets go; pending
 * uploads are completed by the file system's `destroy()`. With `/dev/fd/N`
 * the node owns the mount point and the connection: without a journal the
 * session simply stops; with one, SIGTERM is a planned hand-over (a
 * successor continues the connection, e.g. a newer version): files being
 * written get `--hand-over-wait` seconds to close while everything is
 * served as usual, then no new request is read, those read are answered,
 * and the process exits 0 with its journal describing what the kernel
 * holds. A write handle still open then has lost its upload: the successor
 * fails it with EIO and aborts the upload. A second signal skips the wait.
 *
 * @module
 */
import { selfCommand } from "../cli/mod.ts";
import {
  checkMount,
  FuseSession,
  mountFuse,
  type Negotiated,
  serveFd,
  tuneReadahead,
  unmount,
} from "../fuse/mod.ts";
import { createDataCache, type FsConfig, S3FileSystem, type UploadLedger } from "../fs/mod.ts";
import { type Level, log as rootLog, logToFile, setLevel } from "../log/mod.ts";
import { AwsObjectClient } from "../s3/aws_object_client.ts";
import { isS3Error, type S3ClientConfig } from "../s3/object_client.ts";
import { type CredentialSource, resolveCredentials } from "./credentials.ts";
import { VERSION } from "../version.ts";
import { sha256Hex } from "../util/hash.ts";
import { errorMessage, StartupError } from "../errors/mod.ts";
import { type MetricsAddress, MetricsServer, serveVolumeSocket, watch } from "../metrics/mod.ts";
import { emptyState, FileSink, Journal, replay } from "../takeover/journal.ts";
import { JournalRecorder, type Successor, successorOf } from "../takeover/recorder.ts";
import { serveKeeper } from "../takeover/keeper.ts";

const log = rootLog.with({ component: "mount" });

export interface MountConfig {
  bucket: string;
  /** A directory, or "/dev/fd/N" for a connection mounted by the caller. */
  mountPoint: string;
  fs: Omit<FsConfig, "bucket">;
  s3: Omit<S3ClientConfig, "credentials" | "credentialsProvider">;
  allowOther: boolean;
  allowRoot: boolean;
  /** Mount owner (user_id=) and, with allow-root, the one non-root user allowed in. */
  ownerUid: number;
  ownerGid: number;
  logLevel: Level;
  logFile?: string;
  /** FUSE requests handled at once (--max-threads). */
  maxInFlight: number;
  /** Prometheus endpoint of this mount alone (--metrics-address). */
  metricsAddress?: MetricsAddress;
  /** Where the node gathers this mount's metrics from (--metrics-socket). */
  metricsSocket?: string;
  /** The takeover journal's file (--journal). */
  journal?: string;
  /** Continue a live connection from the journal (--take-over). */
  takeOver: boolean;
  /** Where to serve the keeper socket (--keeper-dir). */
  keeperDir?: string;
  /** How long a hand-over waits for files being written to close (--hand-over-wait). */
  handOverWaitMs: number;
}

/** The metrics endpoints of a serving session; stop() closes them. */
function serveMetrics(cfg: MountConfig): { stop(): Promise<void> } {
  const unwatch = watch("mounts", () => 1);
  const server = cfg.metricsAddress ? new MetricsServer(cfg.metricsAddress) : undefined;
  let socket: { stop(): Promise<void> } | undefined;
  if (cfg.metricsSocket) {
    try {
      socket = serveVolumeSocket(cfg.metricsSocket);
    } catch (err) {
      // Metrics never cost a mount: the node only misses this one's figures.
      log.warn("cannot serve metrics on the socket", {
        socket: cfg.metricsSocket,
        error: errorMessage(err),
      });
    }
  }
  return {
    async stop() {
      unwatch();
      await Promise.all([server?.stop(), socket?.stop()]);
    },
  };
}

async function preflightMountPoint(path: string): Promise<void> {
  if (path.startsWith("/dev/fd/")) return;
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new StartupError(`Mount point "${path}" does not exist`);
    }
    if ((err as { code?: string }).code === "ENOTCONN") {
      throw new StartupError(
        `Mount point "${path}" is a dead FUSE mount (transport endpoint is not connected): unmount it first (umount -l)`,
      );
    }
    throw new StartupError(`Cannot use mount point "${path}": ${errorMessage(err)}`);
  }
  if (!st.isDirectory) throw new StartupError(`Mount point "${path}" is not a directory`);
  const health = await checkMount(path);
  if (health === "ok") {
    throw new StartupError(`Mount point "${path}" is busy: something is already mounted there`);
  }
}

async function preflightBucket(client: AwsObjectClient, cfg: MountConfig): Promise<void> {
  try {
    await client.headBucket(cfg.bucket);
    // A listing proves read access to the prefix the mount will show.
    await client.listObjects(cfg.bucket, { prefix: cfg.fs.prefix, delimiter: "/", maxKeys: 1 });
  } catch (err) {
    const where = cfg.s3.endpointUrl ?? "AWS S3";
    if (isS3Error(err, "NoSuchBucket")) {
      throw new StartupError(`Bucket "${cfg.bucket}" does not exist at ${where}`, { cause: err });
    }
    if (isS3Error(err, "AccessDenied")) {
      throw new StartupError(
        `Access denied to bucket "${cfg.bucket}" at ${where}: check the credentials and the bucket policy`,
        { cause: err },
      );
    }
    if (isS3Error(err, "NetworkError")) {
      throw new StartupError(`Cannot reach the S3 endpoint ${where}: ${err.message}`, {
        cause: err,
      });
    }
    throw new StartupError(
      `Cannot access bucket "${cfg.bucket}" at ${where}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

/**
 * Without --max-cache-size the cache may use the disk's free space minus 5%
 * of its size (mount-s3's rule), measured once at start.
 */
async function defaultCacheSize(dir: string): Promise<number> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    const out = await new Deno.Command("df", { args: ["-B1", "--output=size,avail", dir] })
      .output();
    const [size, avail] = new TextDecoder().decode(out.stdout).trim().split("\n")[1].trim()
      .split(/\s+/).map(Number);
    const bytes = Math.floor(avail - size * 0.05);
    if (Number.isFinite(bytes) && bytes > 0) return bytes;
    log.warn("the cache disk has less than 5% free: the cache stores nothing", { dir });
    return 0;
  } catch (err) {
    throw new StartupError(`Cannot size the cache in "${dir}": ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/** Where the mount's credentials come from, checked once at start (see credentials.ts). */
export async function startupCredentials(
  env: { get(k: string): string | undefined } = Deno.env,
): Promise<CredentialSource> {
  try {
    return await resolveCredentials(env);
  } catch (err) {
    throw new StartupError(errorMessage(err), { cause: err });
  }
}

/**
 * Everything a session needs before the kernel is involved: the S3 client on
 * `creds`, the bucket check, the cache and the file system. Nothing is
 * mounted yet, so a failure here leaves nothing to clean.
 */
export async function openFileSystem(
  cfg: MountConfig,
  creds: CredentialSource,
  options: { ledger?: UploadLedger } = {},
): Promise<S3FileSystem> {
  const s3: S3ClientConfig = {
    ...cfg.s3,
    userAgentPrefix: [cfg.s3.userAgentPrefix, `s3csi-mount/${VERSION}`].filter(Boolean).join(" "),
  };
  if (creds.kind === "env") s3.credentials = creds.credentials;
  if (creds.kind === "file") s3.credentialsProvider = creds.provider;
  // The file watcher already rate-limits re-reads; a second cache would delay rotation.
  const client = new AwsObjectClient(s3, creds.kind === "file" ? { credentialsCacheMs: 0 } : {});
  // The start-up check fails fast: a wrong endpoint should not wait out the full retry budget.
  const probe = new AwsObjectClient(
    { ...s3, maxAttempts: Math.min(s3.maxAttempts ?? 2, 2) },
    creds.kind === "file" ? { credentialsCacheMs: 0 } : {},
  );
  try {
    await preflightBucket(probe, cfg);
  } finally {
    probe.close();
  }

  const fsConfig: FsConfig = { ...cfg.fs, bucket: cfg.bucket };
  const cache = fsConfig.cacheDir
    ? await createDataCache({
      dir: fsConfig.cacheDir,
      maxBytes: fsConfig.maxCacheSize ?? await defaultCacheSize(fsConfig.cacheDir),
      // Stable across restarts of the same mount, so a restart wipes a crashed run's blocks.
      mountId: (await sha256Hex(`${cfg.bucket}\0${fsConfig.prefix}\0${cfg.mountPoint}`)).slice(
        0,
        16,
      ),
    })
    : undefined;
  return new S3FileSystem(client, fsConfig, { ...(cache ? { cache } : {}), ...options });
}

/** How a session treats its mount point. */
export interface ServeOptions {
  /**
   * The caller mounted the connection and owns the mount point: a signal
   * only stops the session. Otherwise a signal detaches the mount.
   */
  handedOver: boolean;
  /** Called once the kernel's INIT is answered (the file system answers). */
  onReady(negotiated: Negotiated): Promise<void>;
  /** Takeover: the session's recorder, and the values to resume a live connection with. */
  recorder?: JournalRecorder;
  resume?: Negotiated;
  /** Called once a hand-over (SIGTERM with a journal) has ended the session, before returning. */
  onHandedOver?(): Promise<void>;
}

/**
 * Serves `fd` (a mounted /dev/fuse connection) with `fs` until the mount
 * goes or a signal stops it. Returns the exit code.
 */
export async function serveSession(
  fd: number,
  fs: S3FileSystem,
  cfg: MountConfig,
  options: ServeOptions,
): Promise<number> {
  // First: a taken metrics port fails the start before anything is served.
  const metrics = serveMetrics(cfg);
  const session = new FuseSession(fd, fs, {
    allowRoot: cfg.allowRoot,
    ownerUid: cfg.ownerUid,
    maxInFlight: cfg.maxInFlight,
    ...(options.recorder ? { recorder: options.recorder } : {}),
    ...(options.resume ? { resume: options.resume } : {}),
  });
  const running = session.run();
  const handOver = options.handedOver && options.recorder
    ? handOverOnce(session, fs, cfg.handOverWaitMs)
    : undefined;
  const signals = (name: Deno.Signal) => () => {
    if (handOver) {
      log.info("signal received: handing the mount over", { signal: name });
      handOver();
    } else if (options.handedOver) {
      log.info("signal received: stopping", { signal: name, mountPoint: cfg.mountPoint });
      session.stop();
    } else {
      log.info("signal received: unmounting", { signal: name, mountPoint: cfg.mountPoint });
      try {
        unmount(cfg.mountPoint, { lazy: true });
      } catch (err) {
        log.warn("unmount failed: stopping the session", { error: err });
        session.stop();
      }
    }
  };
  const onInt = signals("SIGINT");
  const onTerm = signals("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  try {
    // INIT is already queued by the kernel; readiness means the handshake is done.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const negotiated = await Promise.race([
      session.ready,
      new Promise<null>((r) => timer = setTimeout(() => r(null), 10_000)),
    ]).finally(() => clearTimeout(timer));
    if (negotiated === null) throw new StartupError("The kernel did not start the FUSE session");
    log.info("mounted", {
      bucket: cfg.bucket,
      prefix: cfg.fs.prefix,
      mountPoint: cfg.mountPoint,
      readOnly: cfg.fs.readOnly,
      flags: negotiated.flagNames.join(","),
    });
    await options.onReady(negotiated);
    await running;
    if (session.handedOver) await options.onHandedOver?.();
    else log.info("unmounted: session ended", { mountPoint: cfg.mountPoint });
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
    await metrics.stop();
  }
}

/**
 * The hand-over of the module note, started by the first call; a second call
 * stops waiting for writers.
 */
function handOverOnce(session: FuseSession, fs: S3FileSystem, waitMs: number): () => void {
  let started = false;
  let skipped = false;
  return () => {
    if (started) {
      skipped = true;
      return;
    }
    started = true;
    (async () => {
      const deadline = Date.now() + waitMs;
      while (fs.writeHandleCount > 0 && Date.now() < deadline && !skipped) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const writers = fs.writeHandleCount;
      if (writers > 0) {
        log.warn("handing over with files still being written: they will fail with EIO", {
          writers,
        });
      }
      await session.handOver();
      log.info("handed over: the journal describes the mount for a successor", { writers });
    })();
  };
}

/** Runs a mount in the foreground until it is unmounted or signalled. Returns the exit code. */
export async function runMount(cfg: MountConfig): Promise<number> {
  setLevel(cfg.logLevel);
  if (cfg.logFile) logToFile(cfg.logFile);
  await preflightMountPoint(cfg.mountPoint);
  const creds = await startupCredentials();
  const takeover = cfg.journal ? openJournal(cfg.journal, cfg.takeOver) : undefined;
  const fs = await openFileSystem(cfg, creds, takeover ? { ledger: takeover.recorder } : {});
  adoptJournal(fs, takeover, cfg.mountPoint);
  const handedOver = cfg.mountPoint.startsWith("/dev/fd/");
  let fd: number;
  try {
    fd = handedOver ? await serveFd(cfg.mountPoint) : await mountFuse({
      target: cfg.mountPoint,
      fsname: "s3csi",
      subtype: "s3csi",
      uid: cfg.ownerUid,
      gid: cfg.ownerGid,
      allowOther: cfg.allowOther || cfg.allowRoot,
      readOnly: cfg.fs.readOnly,
      defaultPermissions: true,
    });
  } catch (err) {
    throw new StartupError(`Cannot mount on "${cfg.mountPoint}": ${errorMessage(err)}`, {
      cause: err,
    });
  }
  const keeper = cfg.keeperDir ? serveKeeper(cfg.keeperDir, fd, log) : undefined;
  try {
    return await serveSession(fd, fs, cfg, {
      handedOver,
      ...journalServeOptions(takeover),
      async onReady() {
        if (!handedOver) {
          await tuneReadahead(cfg.mountPoint, 1024).catch((err) =>
            log.warn("cannot raise readahead: sequential reads use 128 KiB requests", {
              error: err,
            })
          );
        }
        const readyLine = `mounted bucket "${cfg.bucket}"${
          cfg.fs.prefix ? ` prefix "${cfg.fs.prefix}"` : ""
        } at ${cfg.mountPoint}\n`;
        await Deno.stdout.write(new TextEncoder().encode(readyLine)).catch(() => 0);
      },
    });
  } finally {
    keeper?.stop();
  }
}

/** A session's journal, and what it resumes when it takes over. */
export interface Takeover {
  recorder: JournalRecorder;
  successor?: Successor;
}

/** Makes `fs` adopt what a replayed journal describes (nothing without a successor). */
export function adoptJournal(fs: S3FileSystem, takeover: Takeover | undefined, at: string): void {
  if (!takeover?.successor) return;
  const { adoption } = takeover.successor;
  fs.adopt(adoption);
  log.info("taking over a live mount", {
    mountPoint: at,
    version: VERSION,
    nodes: adoption.nodes.length,
    handles: adoption.handles.length,
    uploadsToAbort: adoption.uploads.length,
  });
}

/** The options of `serveSession` that come from a journal. */
export function journalServeOptions(
  takeover: Takeover | undefined,
): Pick<ServeOptions, "recorder" | "resume"> {
  return {
    ...(takeover ? { recorder: takeover.recorder } : {}),
    ...(takeover?.successor ? { resume: takeover.successor.resume } : {}),
  };
}

/**
 * The journal at `path`, started afresh or, with `takeOver`, replayed (and
 * rewritten as the snapshot of what it held); a journal with nothing to
 * resume is a startup error naming it.
 */
export function openJournal(
  path: string,
  takeOver: boolean,
): Takeover {
  let state = emptyState();
  let successor: Successor | undefined;
  if (takeOver) {
    try {
      state = replay(Deno.readTextFileSync(path));
      successor = successorOf(state);
    } catch (err) {
      throw new StartupError(`Cannot take over from journal "${path}": ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }
  let journal: Journal;
  try {
    journal = new Journal(new FileSink(path), state);
  } catch (err) {
    throw new StartupError(`Cannot write journal "${path}": ${errorMessage(err)}`, { cause: err });
  }
  const recorder = new JournalRecorder(
    journal,
    log.with({ journal: path }),
    () => Deno.removeSync(path),
  );
  return successor ? { recorder, successor } : { recorder };
}

/**
 * Daemon mode: runs this same command again with `--foreground`, relays its
 * ready line (or its error) and exits, leaving the child serving the mount.
 */
export async function daemonize(args: string[]): Promise<number> {
  const [exe, ...pre] = selfCommand();
  const child = new Deno.Command(exe, {
    args: [...pre, "mount", ...args, "--foreground"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const errText = (async () => {
    let s = "";
    for await (const c of child.stderr) s += new TextDecoder().decode(c);
    return s;
  })();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  if (out.includes("\n")) {
    console.log(out.trim());
    reader.releaseLock();
    child.unref();
    return 0;
  }
  const status = await child.status;
  const lines = (await errText).trim().split("\n").filter((l) => !l.startsWith("{"));
  console.error(lines.join("\n") || `s3csi mount exited with code ${status.code}`);
  return status.code || 1;
}
