/**
 * The Mountpoint Pod's side of the contract (`contract.ts`):
 * `s3csi mount --from-socket <comm>/mount.sock`.
 *
 * It listens on the socket, accepts the node's one connection and reads the
 * `MountRequest` with the /dev/fuse fd attached. A pod whose workloads all
 * went before any publish would wait forever, so no connection within
 * `--accept-timeout` seconds (300 by default, 0: no limit) ends it: one info
 * line, the socket removed, no error file, exit 0. The pod then ends
 * Succeeded and the reconciler deletes it, or deletes and creates it again
 * if its attachment still lists workloads. The request's `args` are
 * `s3csi mount` arguments, read by the same code as the command line
 * (`internal/mount/config.ts`), and the file system is opened and served by
 * the same code as `s3csi mount /dev/fd/N` (`internal/mount/run.ts`): the
 * bucket check, credentials, cache and session are not written twice.
 *
 * Credentials: with `authenticationSource` "secret" they come from
 * `CREDENTIALS_FILE` in the comm directory, through the watched-profile
 * provider of the process path, so a file the node rewrites (a rotated
 * secret) is used by the next request without a remount. With "driver" they
 * come from the pod's environment, else from that file when the node put the
 * driver's credentials there.
 *
 * Outcome: once INIT is answered it writes `READY_FILE` and replies
 * `{ok: true}`; a failure before that writes `ERROR_FILE` (one line, the
 * message users see, e.g. `Bucket "x" does not exist at …`), replies it, and
 * exits 1. While serving it keeps the connection open, so the node sees its
 * end as a hang-up. The session ends when the node unmounts the source (the
 * kernel then fails reads with ENODEV), and the process exits 0.
 *
 * Takeover. The session is journaled in `JOURNAL_FILE` in the comm
 * directory. A request with `takeOver` continues a live connection from that
 * journal (the node put it there, or this pod's previous container left it).
 * SIGTERM (the pod is deleted, evicted or upgraded) is a planned hand-over
 * (internal/mount/run.ts): once the session has ended for a successor, the
 * pod sends `HAND_OVER_NOTICE` and waits, bounded, for the node to have
 * copied the journal out, then exits 0. While it serves, it hands the
 * node's spare clone to whoever connects to its keeper socket (contract
 * step 6): a node plugin that restarted takes its keeper back there, and
 * that connection is the one the notice then goes to.
 *
 * Nothing here needs a privilege: the node mounted the connection; this
 * process only reads and writes a fd it was given, and files in the comm
 * directory. It never calls mount(2), never opens /dev/fuse and never
 * touches /sys, so it runs as any user with every capability dropped.
 *
 * @module
 */
import { UsageError } from "../cli/mod.ts";
import { dirname, removeIfPresent } from "../util/path.ts";
import { errorMessage } from "../errors/mod.ts";
import { serveFd } from "../fuse/mod.ts";
import { type Level, log as rootLog, setLevel } from "../log/mod.ts";
import { MIB } from "../fs/mod.ts";
import { mountConfig, parseMountArgs } from "../mount/config.ts";
import type { CredentialSource } from "../mount/credentials.ts";
import {
  adoptJournal,
  journalServeOptions,
  openFileSystem,
  openJournal,
  serveSession,
  startupCredentials,
} from "../mount/run.ts";
import { close, listenUnix, viaDirFd } from "../sys/libc.ts";
import { type KeeperServer, serveKeeper } from "../takeover/keeper.ts";
import {
  COMM_MOUNT_PATH,
  CREDENTIALS_FILE,
  CREDENTIALS_PROFILE,
  ERROR_FILE,
  HAND_OVER_NOTICE,
  isKeeperSpare,
  JOURNAL_FILE,
  METRICS_SOCKET,
  type MountRequest,
  parseMountRequest,
  ProtocolError,
  READY_FILE,
  SOURCE_OWNER,
} from "./contract.ts";
import { acceptOne, receiveLine, sendLine, WireTimeout } from "./wire.ts";

const log = rootLog.with({ component: "mountpoint-pod" });

/** How long the node may take to send its request once connected. */
const REQUEST_TIMEOUT_MS = 30_000;
/** How long a reply may wait for room on the socket. */
const REPLY_TIMEOUT_MS = 5_000;
/** How long a hand-over waits for the node to copy the journal out. */
const HAND_OVER_ACK_MS = 5_000;

export interface ServerOptions {
  /** The socket to listen on, in the comm directory. */
  socketPath: string;
  /** The pod's own log level; a request with `--debug` raises it. */
  logLevel: Level;
  /** Seconds to wait for the node's connection before exiting 0; 0 waits forever. */
  acceptTimeoutS: number;
  /**
   * The pod's own mount options (its command line but the socket's): they
   * bound the pod's resources, so they win over the same options in the
   * request (`MOUNTPOINT_ARGS` in contract.ts).
   */
  podArgs?: string[];
}

/** Writes a status file whole (temp file, then rename), so the node never reads half of one. */
async function writeStatus(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(tmp, text.endsWith("\n") ? text : `${text}\n`);
  await Deno.rename(tmp, path);
}

/** The credentials of a request, as the module note says. */
async function requestCredentials(
  req: MountRequest,
  commDir: string,
): Promise<CredentialSource> {
  const path = `${commDir}/${CREDENTIALS_FILE}`;
  const fileEnv: Record<string, string> = {
    AWS_SHARED_CREDENTIALS_FILE: path,
    AWS_PROFILE: CREDENTIALS_PROFILE,
  };
  const fromFile = () => startupCredentials({ get: (k) => fileEnv[k] });
  if (req.authenticationSource === "secret") return await fromFile();
  const own = await startupCredentials();
  if (own.kind !== "default") return own;
  const written = await Deno.stat(path).then(() => true, () => false);
  return written ? await fromFile() : own;
}

/** Serves one mount handed over on `socketPath`. Returns the exit code. */
export async function serveFromSocket(opts: ServerOptions): Promise<number> {
  setLevel(opts.logLevel);
  const commDir = dirname(opts.socketPath);
  const slog = log.with({ socket: opts.socketPath });
  // A restarted container finds its previous run's files in the same emptyDir.
  for (const f of [READY_FILE, ERROR_FILE]) await removeIfPresent(`${commDir}/${f}`);
  await removeIfPresent(opts.socketPath);
  const name = opts.socketPath.slice(opts.socketPath.lastIndexOf("/") + 1);
  const listener = viaDirFd(commDir, (dir) => listenUnix(`${dir}/${name}`));
  slog.info("waiting for the node", { uid: Deno.uid() });
  const acceptMs = opts.acceptTimeoutS > 0 ? opts.acceptTimeoutS * 1000 : Infinity;
  let conn: number;
  try {
    conn = await acceptOne(listener, Date.now() + acceptMs);
  } catch (err) {
    if (!(err instanceof WireTimeout)) throw err;
    // Not a failure: no error file, and exit 0 so the pod ends Succeeded for the reconciler.
    slog.info(`no mount request within ${opts.acceptTimeoutS}s: exiting`);
    return 0;
  } finally {
    // One node connection per Mountpoint Pod: later connects are refused at once.
    close(listener);
    await removeIfPresent(opts.socketPath).catch(() => {});
  }
  let fuseFd = -1;
  const fail = async (message: string): Promise<number> => {
    const line = message.replace(/\s*\n\s*/g, " ").trim();
    slog.error("mount failed", { reason: line });
    await writeStatus(`${commDir}/${ERROR_FILE}`, line).catch((err) =>
      slog.warn("cannot write the error file", { error: err })
    );
    await sendLine(conn, { ok: false, error: line }, Date.now() + REPLY_TIMEOUT_MS).catch((err) =>
      slog.warn("cannot reply to the node", { error: err })
    );
    if (fuseFd >= 0) close(fuseFd);
    close(conn);
    return 1;
  };
  // Contract step 6: the node's spare clone, handed out on the keeper socket.
  let spare = -1;
  let keeper: KeeperServer | undefined;
  let spareRead: Promise<void> | undefined;
  const receiveSpare = async () => {
    try {
      const got = await receiveLine(conn, Date.now() + REPLY_TIMEOUT_MS, "the node's spare keeper");
      if (!isKeeperSpare(got.line) || got.fd < 0) {
        if (got.fd >= 0) close(got.fd);
        throw new ProtocolError(`Unexpected line from the node: ${got.line.slice(0, 80)}`);
      }
      spare = got.fd;
      keeper = serveKeeper(commDir, spare, slog, { share: true });
    } catch (err) {
      slog.warn(
        "no spare keeper from the node: a restarted node plugin cannot take this mount back",
        {
          error: errorMessage(err),
        },
      );
    }
  };
  let code: number;
  try {
    const received = await receiveLine(conn, Date.now() + REQUEST_TIMEOUT_MS, "the mount request");
    fuseFd = received.fd;
    const req = parseMountRequest(received.line);
    if (fuseFd < 0) throw new ProtocolError("The mount request came without a /dev/fuse fd");
    // Later options win: the pod's own after the request's.
    const parsed = parseMountArgs([...req.args, ...(opts.podArgs ?? [])]);
    if (parsed.positionals.length !== 0) {
      throw new UsageError(
        `Unexpected arguments in the mount request: ${parsed.positionals.join(" ")}`,
      );
    }
    const cfg = mountConfig(parsed, req.bucket, `/dev/fd/${fuseFd}`, {
      uid: SOURCE_OWNER,
      gid: SOURCE_OWNER,
    });
    if (cfg.logLevel === "debug") setLevel("debug");
    // The node names files of the comm directory as the pod mounts it (COMM_MOUNT_PATH).
    const ca = cfg.s3.caBundlePath;
    if (ca?.startsWith(`${COMM_MOUNT_PATH}/`)) {
      cfg.s3.caBundlePath = `${commDir}${ca.slice(COMM_MOUNT_PATH.length)}`;
    }
    cfg.metricsSocket = `${commDir}/${METRICS_SOCKET}`;
    // The journal lives in the comm directory: it survives the container, and the node reads it.
    cfg.journal = `${commDir}/${JOURNAL_FILE}`;
    cfg.takeOver = req.takeOver === true;
    slog.info("mount requested", {
      bucket: req.bucket,
      prefix: cfg.fs.prefix,
      authenticationSource: req.authenticationSource,
      takeOver: cfg.takeOver,
      maxMemoryMiB: cfg.fs.maxMemory / MIB,
      cache: cfg.fs.cacheDir ?? null,
    });
    const takeover = openJournal(cfg.journal, cfg.takeOver);
    const fs = await openFileSystem(cfg, await requestCredentials(req, commDir), {
      ledger: takeover.recorder,
    });
    adoptJournal(fs, takeover, opts.socketPath);
    const fd = await serveFd(fuseFd);
    fuseFd = -1; // the session owns it now, and closes it when it ends
    code = await serveSession(fd, fs, cfg, {
      handedOver: true,
      ...journalServeOptions(takeover),
      async onHandedOver() {
        // The journal goes with the pod's emptyDir: the node copies it before we exit.
        await spareRead;
        const held = keeper?.holder() ?? -1;
        const node = held >= 0 ? held : conn; // a node that restarted holds the keeper socket
        try {
          await sendLine(node, HAND_OVER_NOTICE, Date.now() + REPLY_TIMEOUT_MS);
          const ack = await receiveLine(
            node,
            Date.now() + HAND_OVER_ACK_MS,
            "the node's acknowledgement",
          );
          if (ack.fd >= 0) close(ack.fd);
        } catch (err) {
          slog.warn("the node did not acknowledge the hand-over", { error: errorMessage(err) });
        }
      },
      async onReady() {
        const what = `mounted bucket "${req.bucket}"${
          cfg.fs.prefix ? ` prefix "${cfg.fs.prefix}"` : ""
        }`;
        await writeStatus(`${commDir}/${READY_FILE}`, what);
        await sendLine(conn, { ok: true }, Date.now() + REPLY_TIMEOUT_MS);
        slog.info("serving", { bucket: req.bucket });
        spareRead = receiveSpare();
      },
    });
  } catch (err) {
    return await fail(errorMessage(err));
  } finally {
    await spareRead;
    keeper?.stop();
    if (spare >= 0) close(spare);
  }
  close(conn);
  return code;
}
