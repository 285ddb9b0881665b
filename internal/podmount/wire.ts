/**
 * One JSON line each way over a raw Unix stream socket, the first one
 * carrying an fd (SCM_RIGHTS): the transport of the node ↔ Mountpoint Pod
 * contract (`contract.ts`), shared by both sides.
 *
 * Sockets here are raw non-blocking fds (Deno's sockets expose none, and fd
 * passing needs one). Waiting is a `poll` off the JS thread, in slices of at
 * most a second, so a deadline is kept and the process stays responsive to
 * signals; every wait is bounded by the caller.
 *
 * @module
 */
import {
  acceptUnix,
  close,
  E,
  poll,
  POLLERR,
  POLLHUP,
  POLLIN,
  recvFd,
  sendFd,
  SysError,
  write,
} from "../sys/libc.ts";
import { ProtocolError } from "./contract.ts";

/** Longest line accepted: a request is a bucket and a few dozen options. */
const MAX_LINE = 64 * 1024;
const SLICE_MS = 1000;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Thrown when a bounded wait runs out. */
export class WireTimeout extends Error {
  constructor(what: string) {
    super(`Timed out waiting for ${what}`);
    this.name = "WireTimeout";
  }
}

/** Waits until `fd` is readable (or hung up); false when `deadline` (ms since epoch) passes. */
async function waitReadable(fd: number, deadline: number): Promise<boolean> {
  while (true) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    const [revents] = await poll([{ fd, events: POLLIN }], Math.min(left, SLICE_MS));
    if (revents) return true;
  }
}

/** Accepts one connection on a non-blocking listening socket, waiting until `deadline`. */
export async function acceptOne(listener: number, deadline: number): Promise<number> {
  while (true) {
    const fd = acceptUnix(listener);
    if (fd >= 0) return fd;
    if (!(await waitReadable(listener, deadline))) throw new WireTimeout("a connection");
  }
}

/**
 * Reads one line (without its newline) and the fd sent with it, if any (-1
 * otherwise; received close-on-exec). EOF before a newline is a
 * ProtocolError naming `what`; bytes after the newline are not expected and
 * are dropped.
 */
export async function receiveLine(
  sock: number,
  deadline: number,
  what: string,
): Promise<{ line: string; fd: number }> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let fd = -1;
  const buf = new Uint8Array(4096);
  try {
    while (true) {
      let got: { bytes: number; fd: number };
      try {
        got = recvFd(sock, buf);
      } catch (err) {
        if (err instanceof SysError && err.errno === E.EAGAIN) {
          if (!(await waitReadable(sock, deadline))) throw new WireTimeout(what);
          continue;
        }
        throw err;
      }
      if (got.fd >= 0) {
        if (fd >= 0) close(got.fd); // one fd per message: a second one is not ours to keep
        else fd = got.fd;
      }
      if (got.bytes === 0) throw new ProtocolError(`The peer closed the socket before ${what}`);
      const chunk = buf.slice(0, got.bytes);
      const nl = chunk.indexOf(10);
      chunks.push(nl >= 0 ? chunk.subarray(0, nl) : chunk);
      size += chunk.byteLength;
      if (nl >= 0) break;
      if (size > MAX_LINE) {
        throw new ProtocolError(`Invalid ${what}: longer than ${MAX_LINE} bytes`);
      }
    }
  } catch (err) {
    if (fd >= 0) close(fd);
    throw err;
  }
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return { line: dec.decode(all), fd };
}

/** Writes `value` as one JSON line, with `fd` attached to its first byte when given. */
export async function sendLine(
  sock: number,
  value: unknown,
  deadline: number,
  fd?: number,
): Promise<void> {
  let rest = enc.encode(JSON.stringify(value) + "\n");
  let first = fd !== undefined;
  while (rest.byteLength > 0) {
    let n: number;
    try {
      n = first ? sendFd(sock, fd!, rest) : write(sock, rest);
    } catch (err) {
      if (!(err instanceof SysError && err.errno === E.EAGAIN)) throw err;
      // A full socket buffer: a reply this small never fills it, so just wait for room.
      if (Date.now() > deadline) throw new WireTimeout("room on the socket");
      await new Promise((r) => setTimeout(r, 10));
      continue;
    }
    first = false;
    rest = rest.slice(n);
  }
}

/**
 * Whether the peer of `sock` is gone: hung up, errored, or readable at EOF.
 * Never blocks; unexpected bytes are drained.
 */
export async function peerGone(sock: number): Promise<boolean> {
  const [revents] = await poll([{ fd: sock, events: POLLIN }], 0);
  if (!revents) return false;
  if (revents & (POLLHUP | POLLERR)) return true;
  try {
    const got = recvFd(sock, new Uint8Array(256));
    if (got.fd >= 0) close(got.fd);
    return got.bytes === 0;
  } catch {
    return true;
  }
}

/** Waits until the peer of `sock` is gone; false when `deadline` passes first. */
export async function waitPeerGone(sock: number, deadline: number): Promise<boolean> {
  while (!(await peerGone(sock))) {
    if (!(await waitReadable(sock, deadline))) return false;
  }
  return true;
}
