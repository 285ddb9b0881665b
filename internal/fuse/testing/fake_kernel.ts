/**
 * A fake kernel for session tests: a SOCK_SEQPACKET socketpair stands in for
 * /dev/fuse (it keeps message boundaries, so one read is one request and one
 * write one reply), the test plays the kernel on the other end, and the
 * builders below encode request bodies.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Entry, type FileSystem, S_IFREG } from "../../fs/api.ts";
import { setSink, type Sink } from "../../log/mod.ts";
import {
  AF_UNIX,
  close,
  poll,
  POLLIN,
  read,
  setNonBlocking,
  SOCK_CLOEXEC,
  SOCK_SEQPACKET,
  socketpair,
  write,
} from "../../sys/libc.ts";
import { Op } from "../abi.ts";
import { FuseSession, type SessionOptions } from "../session.ts";

export const enc = new TextEncoder();

export interface Reply {
  len: number;
  error: number;
  unique: number;
  payload: Uint8Array;
  view: DataView;
}

/** The kernel's end of the fake device. */
export class FakeKernel {
  readonly kernelFd: number;
  readonly serverFd: number;
  #closed = false;

  constructor() {
    [this.kernelFd, this.serverFd] = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC);
    setNonBlocking(this.serverFd);
  }

  /** Sends one request: header (uid/gid/pid given) + body. */
  send(
    opcode: number,
    unique: number,
    nodeid: number,
    body: Uint8Array = new Uint8Array(0),
    uid = 0,
  ): void {
    const b = new Uint8Array(40 + body.byteLength);
    const v = new DataView(b.buffer);
    v.setUint32(0, b.byteLength, true);
    v.setUint32(4, opcode, true);
    v.setBigUint64(8, BigInt(unique), true);
    v.setBigUint64(16, BigInt(nodeid), true);
    v.setUint32(24, uid, true);
    v.setUint32(28, uid, true);
    v.setUint32(32, 4242, true);
    b.set(body, 40);
    write(this.kernelFd, b);
  }

  /** Waits for the next reply. */
  async recv(): Promise<Reply> {
    const [ev] = await poll([{ fd: this.kernelFd, events: POLLIN }], 10_000);
    if (!(ev! & POLLIN)) throw new Error("No reply from the session within 10 s");
    const buf = new Uint8Array(2 * 1024 * 1024);
    const n = read(this.kernelFd, buf);
    const v = new DataView(buf.buffer, 0, n);
    const len = v.getUint32(0, true);
    assert.equal(len, n, "reply len must equal the bytes written");
    return {
      len,
      error: v.getInt32(4, true),
      unique: Number(v.getBigUint64(8, true)),
      payload: buf.subarray(16, n),
      view: new DataView(buf.buffer, 16, n - 16),
    };
  }

  /** True if no reply is pending right now. */
  async idle(): Promise<boolean> {
    const [ev] = await poll([{ fd: this.kernelFd, events: POLLIN }], 0);
    return (ev! & POLLIN) === 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    close(this.kernelFd);
  }
}

export function body(...parts: [type: "u32" | "u64", value: number][]): Uint8Array {
  const size = parts.reduce((n, [t]) => n + (t === "u32" ? 4 : 8), 0);
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  let off = 0;
  for (const [t, value] of parts) {
    if (t === "u32") v.setUint32(off, value, true);
    else v.setBigUint64(off, BigInt(value), true);
    off += t === "u32" ? 4 : 8;
  }
  return b;
}

export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

export function name(s: string): Uint8Array {
  return cat(enc.encode(s), new Uint8Array(1));
}

export const KERNEL_FLAGS = 0xffffffff; // everything below bit 32, INIT_EXT included

export function initBody(major = 7, minor = 45, maxReadahead = 131072): Uint8Array {
  return cat(
    body(["u32", major], ["u32", minor], ["u32", maxReadahead], ["u32", KERNEL_FLAGS]),
    body(["u32", 0xff]), // flags2
    new Uint8Array(44),
  );
}

export function readBody(fh: number, offset: number, size: number): Uint8Array {
  return body(["u64", fh], ["u64", offset], ["u32", size], ["u32", 0], ["u64", 0], ["u32", 0], [
    "u32",
    0,
  ]);
}

export const ATTR = {
  ino: 5,
  size: 3,
  blocks: 1,
  atimeMs: 0,
  mtimeMs: 0,
  ctimeMs: 0,
  mode: S_IFREG | 0o644,
  nlink: 1,
  uid: 0,
  gid: 0,
  blksize: 4096,
};

export function entry(ino: number): Entry {
  return { ino, generation: 0, attr: { ...ATTR, ino }, entryTtlMs: 1000, attrTtlMs: 1000 };
}

/** A FileSystem whose every method fails unless a test overrides it. */
export function stubFs(overrides: Partial<FileSystem> = {}): FileSystem & { log: string[] } {
  const log: string[] = [];
  const unexpected = (op: string) => () => Promise.reject(new Error(`Unexpected ${op}`));
  return {
    log,
    init: () => {
      log.push("init");
      return Promise.resolve();
    },
    destroy: () => {
      log.push("destroy");
      return Promise.resolve();
    },
    lookup: unexpected("lookup"),
    forget: (ino, n) => void log.push(`forget ${ino} ${n}`),
    getattr: (_c, ino) => Promise.resolve({ attr: { ...ATTR, ino }, ttlMs: 1000 }),
    setattr: unexpected("setattr"),
    mknod: unexpected("mknod"),
    mkdir: unexpected("mkdir"),
    unlink: unexpected("unlink"),
    rmdir: unexpected("rmdir"),
    rename: unexpected("rename"),
    open: unexpected("open"),
    read: unexpected("read"),
    write: unexpected("write"),
    flush: unexpected("flush"),
    release: unexpected("release"),
    fsync: unexpected("fsync"),
    opendir: unexpected("opendir"),
    readdir: unexpected("readdir"),
    releasedir: unexpected("releasedir"),
    statfs: unexpected("statfs"),
    ...overrides,
  };
}

/** Starts a session on a fake kernel, runs the test body, and always tears both down. */
export async function withSession(
  fs: FileSystem,
  options: SessionOptions,
  fn: (k: FakeKernel, s: FuseSession) => Promise<void>,
  init = true,
): Promise<void> {
  const k = new FakeKernel();
  const s = new FuseSession(k.serverFd, fs, options);
  const running = s.run();
  try {
    if (init) {
      k.send(Op.INIT, 1, 0, initBody());
      const r = await k.recv();
      assert.equal(r.error, 0);
    }
    await fn(k, s);
  } finally {
    k.close(); // EOF ends the session
    await running;
  }
}

/** Captures log lines while `fn` runs. */
export async function captureLogs(fn: () => Promise<void>): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  const sink: Sink = { write: (l) => lines.push(JSON.parse(l)) };
  const prev = setSink(sink);
  try {
    await fn();
  } finally {
    setSink(prev);
  }
  return lines;
}
