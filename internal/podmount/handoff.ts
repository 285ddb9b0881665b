/**
 * The node's side of the socket contract (`contract.ts`): reach a
 * Mountpoint Pod's socket in its comm directory, send it a clone of the
 * mounted /dev/fuse fd with the `MountRequest`, and read its answer.
 *
 * The clone (`FUSE_DEV_IOC_CLONE` on a fresh /dev/fuse fd, pointing at the
 * node's own fd) is a second device fd on the same connection: the node
 * keeps the original, so the connection outlives the Mountpoint Pod's
 * process (requests wait in the kernel for the next server instead of the
 * mount going ENOTCONN; see shared/reference/measured-here.md).
 *
 * @module
 */
import { close, connectUnix, E, SysError, viaDirFd } from "../sys/libc.ts";
import { cloneFuseFd } from "../fuse/mod.ts";
import {
  ERROR_FILE,
  type MountReply,
  type MountRequest,
  parseMountReply,
  SOCKET_NAME,
} from "./contract.ts";
import { receiveLine, sendLine, WireTimeout } from "./wire.ts";

const RETRY_MS = 200;

/** A connection to a Mountpoint Pod, and the user it runs as (the socket's owner). */
export interface MountpointConnection {
  sock: number;
  owner: { uid: number; gid: number };
}

/** Whether a failed attempt means "not there yet": no directory, no socket, nobody listening. */
function notYet(err: unknown): boolean {
  if (err instanceof Deno.errors.NotFound) return true;
  return err instanceof SysError &&
    (err.errno === E.ENOENT || err.errno === E.ECONNREFUSED);
}

async function connectOnce(commDir: string): Promise<MountpointConnection> {
  // The owner first: the Mountpoint Pod removes its socket once it has accepted us.
  const st = await Deno.stat(`${commDir}/${SOCKET_NAME}`);
  const sock = viaDirFd(commDir, (dir) => connectUnix(`${dir}/${SOCKET_NAME}`));
  return { sock, owner: { uid: st.uid ?? 0, gid: st.gid ?? 0 } };
}

/**
 * Connects to the socket in `commDir`, retrying while it is not there or
 * nobody listens on it, until `deadline`: then a WireTimeout.
 */
export async function connectMountpoint(
  commDir: string,
  deadline: number,
): Promise<MountpointConnection> {
  while (true) {
    try {
      return await connectOnce(commDir);
    } catch (err) {
      if (!notYet(err)) throw err;
    }
    if (Date.now() + RETRY_MS > deadline) throw new WireTimeout(`a socket in "${commDir}"`);
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
}

/**
 * Sends `request` with a clone of `keeper` attached and waits, until
 * `deadline`, for the reply. When the Mountpoint Pod hangs up without one,
 * its `ERROR_FILE` is the explanation; a WireTimeout means it never answered.
 */
export async function handOver(
  conn: MountpointConnection,
  commDir: string,
  keeper: number,
  request: MountRequest,
  deadline: number,
): Promise<MountReply> {
  const clone = cloneFuseFd(keeper);
  try {
    await sendLine(conn.sock, request, deadline, clone);
  } finally {
    close(clone); // the Mountpoint Pod has its own now
  }
  try {
    const { line, fd } = await receiveLine(conn.sock, deadline, "the Mountpoint Pod's reply");
    if (fd >= 0) close(fd);
    return parseMountReply(line);
  } catch (err) {
    if (err instanceof WireTimeout) throw err;
    const written = await readErrorFile(commDir);
    if (written) return { ok: false, error: written };
    throw err;
  }
}

/** The one line of a Mountpoint Pod's `ERROR_FILE`, if it wrote one. */
export async function readErrorFile(commDir: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(`${commDir}/${ERROR_FILE}`)).trim() || undefined;
  } catch {
    return undefined;
  }
}
