/**
 * The keeper socket: how a CSI node that restarted gets its keeper fds back.
 *
 * The node keeps one fd of every FUSE connection it mounted (the keeper),
 * so that a mount server that dies can be replaced without the kernel
 * ending the connection (internal/mounter/process_mounter.ts). A node that
 * restarts has lost its keepers, while the servers it started go on. Each
 * server therefore listens on a Unix socket in its private state directory
 * (root only, mode 0700, socket 0600) and gives every client that connects
 * a *new clone* of its connection (`cloneFuseFd`), with one JSON line
 * `{"pid": N, "version": "…"}` (the version lets a newer node hand the
 * mount over to its own version, process_mounter.ts). A clone, not a copy of its own fd: the kernel ends the
 * requests a dead server had read only once that server's device fd is
 * closed, so nobody else may hold it.
 *
 * The client keeps the connection open: when the server dies, its end
 * closes, which is how a node that did not start the server learns of its
 * death (`gone`). A server keeps only the newest client's connection: a
 * node that reconnects has replaced the one before.
 *
 * A Mountpoint Pod cannot clone (it has no /dev/fuse): the node gives it a
 * spare clone that it never reads from, and its keeper socket, in the comm
 * directory, hands out that spare itself (`share`). Holding a fd nobody
 * reads keeps the connection alive without holding back any request.
 *
 * @module
 */
import { cloneFuseFd } from "../fuse/mod.ts";
import type { Logger } from "../log/mod.ts";
import { acceptOne, receiveLine, sendLine, waitPeerGone, WireTimeout } from "../podmount/wire.ts";
import { close, connectUnix, listenUnix, viaDirFd } from "../sys/libc.ts";
import { errorMessage } from "../errors/mod.ts";
import { VERSION } from "../version.ts";

/** The socket's name in a mount's state directory. */
export const KEEPER_SOCKET = "keeper.sock";
const SEND_TIMEOUT_MS = 5_000;
const SLICE_MS = 1_000;

export interface KeeperServer {
  /** The newest client's connection (-1 for none): the node that holds a keeper now. */
  holder(): number;
  stop(): void;
}

/**
 * Serves clones of `fuseFd` on `<dir>/keeper.sock` until `stop()`; with
 * `share`, `fuseFd` itself (a spare nobody reads from, see the module note).
 */
export function serveKeeper(
  dir: string,
  fuseFd: number,
  log: Logger,
  opts: { share?: boolean } = {},
): KeeperServer {
  const path = `${dir}/${KEEPER_SOCKET}`;
  try {
    Deno.removeSync(path);
  } catch {
    // none left by a predecessor
  }
  const listener = viaDirFd(dir, (d) => listenUnix(`${d}/${KEEPER_SOCKET}`));
  Deno.chmodSync(path, 0o600);
  let stopped = false;
  let holder = -1;
  (async () => {
    while (!stopped) {
      let conn: number;
      try {
        conn = await acceptOne(listener, Date.now() + SLICE_MS);
      } catch (err) {
        if (err instanceof WireTimeout) continue;
        if (!stopped) log.warn("keeper socket failed", { error: errorMessage(err) });
        return;
      }
      try {
        const given = opts.share ? fuseFd : cloneFuseFd(fuseFd);
        try {
          await sendLine(
            conn,
            { pid: Deno.pid, version: VERSION },
            Date.now() + SEND_TIMEOUT_MS,
            given,
          );
        } finally {
          if (given !== fuseFd) close(given); // the client has its own now
        }
        if (holder >= 0) close(holder);
        holder = conn;
        log.info("handed a keeper of the FUSE connection to the node");
      } catch (err) {
        close(conn);
        log.warn("cannot hand a keeper to the node", { error: errorMessage(err) });
      }
    }
  })();
  return {
    holder: () => holder,
    stop() {
      if (stopped) return;
      stopped = true;
      close(listener);
      if (holder >= 0) close(holder);
      try {
        Deno.removeSync(path);
      } catch {
        // already gone
      }
    },
  };
}

/** A keeper got back from a running server. */
export interface Reclaimed {
  keeper: number;
  pid: number;
  /** The server's driver version ("" from a server that did not say). */
  version: string;
  /** Resolves when the server process has ended (or, after `release()`, within a second). */
  gone: Promise<void>;
  /** Stops watching (the socket closes; the keeper stays the caller's). */
  release(): void;
}

/** A keeper taken from a keeper socket, with the connection it came on (the caller's to close). */
export interface TakenKeeper {
  keeper: number;
  pid: number;
  version: string;
  /** Stays open while the server lives; it hangs up when the server ends. */
  sock: number;
}

/** Connects to the keeper socket in `dir` and takes a keeper. */
export async function takeKeeper(dir: string, timeoutMs = SEND_TIMEOUT_MS): Promise<TakenKeeper> {
  const sock = viaDirFd(dir, (d) => connectUnix(`${d}/${KEEPER_SOCKET}`));
  try {
    const { line, fd } = await receiveLine(sock, Date.now() + timeoutMs, "a keeper");
    if (fd < 0) throw new Error("The mount server sent no keeper fd");
    try {
      const said = JSON.parse(line) as { pid?: unknown; version?: unknown };
      const version = typeof said.version === "string" ? said.version : "";
      return { keeper: fd, pid: Number(said.pid), version, sock };
    } catch (err) {
      close(fd);
      throw err;
    }
  } catch (err) {
    close(sock);
    throw err;
  }
}

/** Connects to the server of the mount whose state directory is `dir`, and takes a keeper. */
export async function reclaimKeeper(dir: string, timeoutMs = SEND_TIMEOUT_MS): Promise<Reclaimed> {
  const { keeper, pid, version, sock } = await takeKeeper(dir, timeoutMs);
  let released = false;
  // The socket is closed here, by its only user, so that its number is never polled after reuse.
  const gone = (async () => {
    try {
      while (!released && !(await waitPeerGone(sock, Date.now() + SLICE_MS))) { /* there */ }
    } finally {
      close(sock);
    }
  })();
  return {
    keeper,
    pid,
    version,
    gone,
    release() {
      released = true;
    },
  };
}
