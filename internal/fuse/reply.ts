/**
 * Encoders for FUSE replies: the 16-byte out header and every payload the
 * session sends (entry_out, attr_out, open_out, write_out, statfs_out,
 * init_out) plus dirent / direntplus packing.
 *
 * Encoders write into a caller-owned buffer at an offset and return the bytes
 * written, so the session can encode a whole reply (header + payload) into a
 * buffer it already owns and send it with a single write: no allocation per
 * reply. Layouts and sizes come from abi.ts; the tests compare them to
 * commented golden bytes.
 *
 * Conversions: the FS layer speaks milliseconds (times and TTLs) and plain
 * numbers; the wire wants seconds + nanoseconds and u64s. Times before 1970
 * are written as negative i64 seconds with a positive nsec, as the kernel
 * expects.
 *
 * @module
 */

import type { Attr, AttrReply, DirEntry, Entry, OpenReply, StatFs } from "../fs/api.ts";
import { DIRENT_ALIGN, FOPEN, sizeOf } from "./abi.ts";

export const OUT_HEADER_SIZE = sizeOf("out_header"); // 16
export const ATTR_SIZE = sizeOf("attr"); // 88
export const ENTRY_OUT_SIZE = sizeOf("entry_out"); // 128
export const ATTR_OUT_SIZE = sizeOf("attr_out"); // 104
export const OPEN_OUT_SIZE = sizeOf("open_out"); // 16
export const WRITE_OUT_SIZE = sizeOf("write_out"); // 8
export const STATFS_OUT_SIZE = sizeOf("statfs_out"); // 80
export const INIT_OUT_SIZE = sizeOf("init_out"); // 64
export const DIRENT_SIZE = sizeOf("dirent"); // 24, before the name
export const DIRENTPLUS_SIZE = sizeOf("direntplus"); // 152, before the name

const TWO32 = 4294967296;
const S_IFMT = 0o170000;

/** Writes a non-negative integer as u64; negatives as i64 (two's complement). */
export function setU64(v: DataView, off: number, n: number): void {
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) {
    const i = Math.floor(n);
    v.setUint32(off, i % TWO32, true);
    v.setUint32(off + 4, Math.floor(i / TWO32), true);
  } else if (n < 0) {
    v.setBigInt64(off, BigInt(Math.floor(n)), true);
  } else if (n > 0) {
    // Beyond 2^53 (or +Infinity): saturate rather than wrap.
    v.setBigUint64(off, n === Infinity ? 0xffffffffffffffffn : BigInt(Math.floor(n)), true);
  } else {
    v.setUint32(off, 0, true); // NaN
    v.setUint32(off + 4, 0, true);
  }
}

/** Milliseconds → (seconds at `secOff`, nanoseconds at `nsecOff`). */
function setTime(v: DataView, secOff: number, nsecOff: number, ms: number): void {
  if (!Number.isFinite(ms)) ms = 0;
  let sec = Math.floor(ms / 1000);
  let nsec = Math.round((ms - sec * 1000) * 1e6);
  if (nsec >= 1e9) {
    sec += 1;
    nsec -= 1e9;
  }
  setU64(v, secOff, sec);
  v.setUint32(nsecOff, nsec, true);
}

/** A TTL in ms → seconds + nanoseconds, never negative. */
function setTtl(v: DataView, secOff: number, nsecOff: number, ms: number): void {
  setTime(v, secOff, nsecOff, ms > 0 ? ms : 0);
}

/** fuse_out_header. `errno` is positive (0 = success); it is sent negated. */
export function writeOutHeader(
  v: DataView,
  off: number,
  len: number,
  errno: number,
  unique: number,
): number {
  v.setUint32(off, len, true);
  v.setInt32(off + 4, errno === 0 ? 0 : -Math.abs(errno), true);
  setU64(v, off + 8, unique);
  return OUT_HEADER_SIZE;
}

/** fuse_attr (88 bytes). */
export function writeAttr(v: DataView, off: number, a: Attr): number {
  setU64(v, off, a.ino);
  setU64(v, off + 8, a.size);
  setU64(v, off + 16, a.blocks);
  setTime(v, off + 24, off + 48, a.atimeMs);
  setTime(v, off + 32, off + 52, a.mtimeMs);
  setTime(v, off + 40, off + 56, a.ctimeMs);
  v.setUint32(off + 60, a.mode, true);
  v.setUint32(off + 64, a.nlink, true);
  v.setUint32(off + 68, a.uid, true);
  v.setUint32(off + 72, a.gid, true);
  v.setUint32(off + 76, 0, true); // rdev
  v.setUint32(off + 80, a.blksize, true);
  v.setUint32(off + 84, 0, true); // flags
  return ATTR_SIZE;
}

/** fuse_entry_out (128 bytes). */
export function writeEntryOut(v: DataView, off: number, e: Entry): number {
  setU64(v, off, e.ino);
  setU64(v, off + 8, e.generation);
  setTtl(v, off + 16, off + 32, e.entryTtlMs);
  setTtl(v, off + 24, off + 36, e.attrTtlMs);
  writeAttr(v, off + 40, e.attr);
  return ENTRY_OUT_SIZE;
}

/** fuse_attr_out (104 bytes). */
export function writeAttrOut(v: DataView, off: number, r: AttrReply): number {
  setTtl(v, off, off + 8, r.ttlMs);
  v.setUint32(off + 12, 0, true); // dummy
  writeAttr(v, off + 16, r.attr);
  return ATTR_OUT_SIZE;
}

/** The FOPEN_* bits of an OpenReply. */
export function openFlags(o: OpenReply): number {
  return (o.directIo ? FOPEN.DIRECT_IO : 0) | (o.keepCache ? FOPEN.KEEP_CACHE : 0) |
    (o.cacheDir ? FOPEN.CACHE_DIR : 0);
}

/** fuse_open_out (16 bytes). */
export function writeOpenOut(v: DataView, off: number, o: OpenReply): number {
  setU64(v, off, o.fh);
  v.setUint32(off + 8, openFlags(o), true);
  v.setUint32(off + 12, 0, true); // backing_id / padding
  return OPEN_OUT_SIZE;
}

/** fuse_write_out (8 bytes). */
export function writeWriteOut(v: DataView, off: number, size: number): number {
  v.setUint32(off, size, true);
  v.setUint32(off + 4, 0, true);
  return WRITE_OUT_SIZE;
}

/** fuse_statfs_out (80 bytes). */
export function writeStatfsOut(v: DataView, off: number, s: StatFs): number {
  setU64(v, off, s.blocks);
  setU64(v, off + 8, s.bfree);
  setU64(v, off + 16, s.bavail);
  setU64(v, off + 24, s.files);
  setU64(v, off + 32, s.ffree);
  v.setUint32(off + 40, s.bsize, true);
  v.setUint32(off + 44, s.namelen, true);
  v.setUint32(off + 48, s.frsize, true);
  for (let p = off + 52; p < off + STATFS_OUT_SIZE; p += 4) v.setUint32(p, 0, true); // padding, spare
  return STATFS_OUT_SIZE;
}

export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  /** 64-bit capability flags; bits 32..63 go to flags2. */
  flags: bigint;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
  mapAlignment?: number;
  maxStackDepth?: number;
  requestTimeout?: number;
}

/** fuse_init_out (64 bytes). */
export function writeInitOut(v: DataView, off: number, o: InitOut): number {
  v.setUint32(off, o.major, true);
  v.setUint32(off + 4, o.minor, true);
  v.setUint32(off + 8, o.maxReadahead, true);
  v.setUint32(off + 12, Number(o.flags & 0xffffffffn), true);
  v.setUint16(off + 16, o.maxBackground, true);
  v.setUint16(off + 18, o.congestionThreshold, true);
  v.setUint32(off + 20, o.maxWrite, true);
  v.setUint32(off + 24, o.timeGran, true);
  v.setUint16(off + 28, o.maxPages, true);
  v.setUint16(off + 30, o.mapAlignment ?? 0, true);
  v.setUint32(off + 32, Number((o.flags >> 32n) & 0xffffffffn), true);
  v.setUint32(off + 36, o.maxStackDepth ?? 0, true);
  v.setUint16(off + 40, o.requestTimeout ?? 0, true);
  for (let p = off + 42; p < off + INIT_OUT_SIZE; p += 2) v.setUint16(p, 0, true);
  return INIT_OUT_SIZE;
}

/** Rounds a record length up to the dirent alignment (8). */
export function direntAlign(n: number): number {
  return (n + DIRENT_ALIGN - 1) & ~(DIRENT_ALIGN - 1);
}

const enc = new TextEncoder();

/**
 * Packs READDIR / READDIRPLUS entries into `buf[start, start + size)`.
 * An entry that does not fit whole is refused (add returns false) and
 * nothing of it is kept, so the FS serves it again on the next call. Each
 * record's `off` is the cookie of the *next* entry, its `type` is mode >> 12,
 * and records are zero-padded to 8 bytes.
 */
export class DirentPacker {
  #buf: Uint8Array;
  #view: DataView;
  #start = 0;
  #end = 0;
  #pos = 0;
  #plus = false;
  #count = 0;

  constructor(buf: Uint8Array, view?: DataView) {
    this.#buf = buf;
    this.#view = view ?? new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Starts a new reply at `start` with room for at most `size` bytes. */
  reset(start: number, size: number, plus: boolean): this {
    this.#start = start;
    this.#pos = start;
    this.#end = Math.min(start + size, this.#buf.byteLength);
    this.#plus = plus;
    this.#count = 0;
    return this;
  }

  /** Bytes packed so far. */
  get length(): number {
    return this.#pos - this.#start;
  }

  /** Entries packed so far. */
  get count(): number {
    return this.#count;
  }

  /** Adds one entry (as a dirent or a direntplus, per `reset`); false if it does not fit. */
  add(e: DirEntry): boolean {
    const fixed = this.#plus ? DIRENTPLUS_SIZE : DIRENT_SIZE;
    const nameAt = this.#pos + fixed;
    if (nameAt >= this.#end) return false;
    // Encode straight into place; a name that does not fit is detected by `read`.
    const r = enc.encodeInto(e.name, this.#buf.subarray(nameAt, this.#end));
    if (r.read < e.name.length || r.written === 0) return false;
    const rec = direntAlign(fixed + r.written);
    if (this.#pos + rec > this.#end) return false;
    const v = this.#view;
    let d = this.#pos;
    if (this.#plus) {
      if (e.entry) writeEntryOut(v, d, e.entry);
      else this.#buf.fill(0, d, d + ENTRY_OUT_SIZE); // nodeid 0: the kernel links nothing
      d += ENTRY_OUT_SIZE;
    }
    setU64(v, d, e.ino);
    setU64(v, d + 8, e.nextOffset);
    v.setUint32(d + 16, r.written, true);
    v.setUint32(d + 20, (e.type & S_IFMT) >>> 12, true);
    this.#buf.fill(0, nameAt + r.written, this.#pos + rec);
    this.#pos += rec;
    this.#count++;
    return true;
  }
}
