/**
 * Encoders for FUSE replies and notifications: the out header, every payload
 * the session sends (entry_out, attr_out, open_out, write_out, statfs_out,
 * init_out), dirent / direntplus packing, and the cache invalidations.
 *
 * Each struct is written by a `StructWriter` built from its layout in
 * structs.ts: offsets and sizes come from the table, and every byte not
 * written is zeroed. Encoders write into a caller-owned buffer at an offset
 * and return the bytes written, so the dispatcher encodes a whole reply
 * (header + payload) into the request's own buffer (its channel slot) and
 * sends it with one write: no allocation per reply. The tests compare the output to commented golden
 * bytes.
 *
 * Conversions: the FS layer speaks milliseconds (times and TTLs) and plain
 * numbers; the wire wants seconds + nanoseconds and u64s. Times before 1970
 * are written as negative i64 seconds with a positive nsec, as the kernel
 * expects.
 *
 * @module
 */

import {
  type Attr,
  type AttrReply,
  type DirEntry,
  type Entry,
  type OpenReply,
  S_IFMT,
  type StatFs,
} from "../fs/api.ts";
import { DIRENT_ALIGN, FOPEN, NOTIFY } from "./abi.ts";
import { offsets, setU64, StructWriter } from "./codec.ts";
import { sizeOf } from "./structs.ts";

export const OUT_HEADER_SIZE = sizeOf("out_header");

const OH = offsets("out_header", ["len", "error", "unique"]);
const ATTR = new StructWriter("attr", {
  ino: "ino",
  size: "size",
  blocks: "blocks",
  mode: "mode",
  nlink: "nlink",
  uid: "uid",
  gid: "gid",
  blksize: "blksize",
}, ["atime", "atimensec", "mtime", "mtimensec", "ctime", "ctimensec"]);
const ENTRY_OUT = new StructWriter(
  "entry_out",
  { ino: "nodeid", generation: "generation" },
  ["entry_valid", "entry_valid_nsec", "attr_valid", "attr_valid_nsec", "attr"],
);
const ATTR_OUT = new StructWriter("attr_out", {}, ["attr_valid", "attr_valid_nsec", "attr"]);
const OPEN_OUT = new StructWriter("open_out", { fh: "fh" }, ["open_flags"]);
const WRITE_OUT = new StructWriter("write_out", {}, ["size"]);
const STATFS_OUT = new StructWriter("statfs_out", {
  blocks: "st.blocks",
  bfree: "st.bfree",
  bavail: "st.bavail",
  files: "st.files",
  ffree: "st.ffree",
  bsize: "st.bsize",
  namelen: "st.namelen",
  frsize: "st.frsize",
});
const INIT_OUT = new StructWriter("init_out", {
  major: "major",
  minor: "minor",
  maxReadahead: "max_readahead",
  maxBackground: "max_background",
  congestionThreshold: "congestion_threshold",
  maxWrite: "max_write",
  timeGran: "time_gran",
  maxPages: "max_pages",
  mapAlignment: "map_alignment",
  maxStackDepth: "max_stack_depth",
  requestTimeout: "request_timeout",
}, ["flags", "flags2"]);
const DIRENT = new StructWriter("dirent", { ino: "ino", nextOffset: "off" }, ["namelen", "type"]);
const DIRENTPLUS = offsets("direntplus", ["entry_out", "dirent"]);
const DIRENTPLUS_SIZE = sizeOf("direntplus");
const INVAL_INODE = new StructWriter("notify_inval_inode_out", {
  ino: "ino",
  offset: "off",
  length: "len",
});
const INVAL_ENTRY = new StructWriter("notify_inval_entry_out", {
  parent: "parent",
  namelen: "namelen",
});

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

function setHeader(v: DataView, off: number, len: number, error: number, unique: number): void {
  v.setUint32(off + OH.len, len, true);
  v.setInt32(off + OH.error, error, true);
  setU64(v, off + OH.unique, unique);
}

/** fuse_out_header. `errno` is positive (0 = success); it is sent negated. */
export function writeOutHeader(
  v: DataView,
  off: number,
  len: number,
  errno: number,
  unique: number,
): number {
  setHeader(v, off, len, errno === 0 ? 0 : -Math.abs(errno), unique);
  return OUT_HEADER_SIZE;
}

/** fuse_attr. */
function writeAttr(v: DataView, off: number, a: Attr): number {
  ATTR.write(v, off, a);
  const at = ATTR.at;
  setTime(v, off + at.atime, off + at.atimensec, a.atimeMs);
  setTime(v, off + at.mtime, off + at.mtimensec, a.mtimeMs);
  setTime(v, off + at.ctime, off + at.ctimensec, a.ctimeMs);
  return ATTR.size;
}

/** fuse_entry_out. */
export function writeEntryOut(v: DataView, off: number, e: Entry): number {
  ENTRY_OUT.write(v, off, e);
  const at = ENTRY_OUT.at;
  setTtl(v, off + at.entry_valid, off + at.entry_valid_nsec, e.entryTtlMs);
  setTtl(v, off + at.attr_valid, off + at.attr_valid_nsec, e.attrTtlMs);
  writeAttr(v, off + at.attr, e.attr);
  return ENTRY_OUT.size;
}

/** fuse_attr_out. */
export function writeAttrOut(v: DataView, off: number, r: AttrReply): number {
  ATTR_OUT.write(v, off);
  const at = ATTR_OUT.at;
  setTtl(v, off + at.attr_valid, off + at.attr_valid_nsec, r.ttlMs);
  writeAttr(v, off + at.attr, r.attr);
  return ATTR_OUT.size;
}

/** The FOPEN_* bits of an OpenReply. */
function openFlags(o: OpenReply): number {
  return (o.directIo ? FOPEN.DIRECT_IO : 0) | (o.keepCache ? FOPEN.KEEP_CACHE : 0) |
    (o.cacheDir ? FOPEN.CACHE_DIR : 0);
}

/** fuse_open_out. */
export function writeOpenOut(v: DataView, off: number, o: OpenReply): number {
  OPEN_OUT.write(v, off, o);
  v.setUint32(off + OPEN_OUT.at.open_flags, openFlags(o), true);
  return OPEN_OUT.size;
}

/** fuse_write_out. */
export function writeWriteOut(v: DataView, off: number, size: number): number {
  WRITE_OUT.write(v, off);
  v.setUint32(off + WRITE_OUT.at.size, size, true);
  return WRITE_OUT.size;
}

/** fuse_statfs_out. */
export function writeStatfsOut(v: DataView, off: number, s: StatFs): number {
  return STATFS_OUT.write(v, off, s);
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

/** fuse_init_out. */
export function writeInitOut(v: DataView, off: number, o: InitOut): number {
  INIT_OUT.write(v, off, o);
  v.setUint32(off + INIT_OUT.at.flags, Number(o.flags & 0xffffffffn), true);
  v.setUint32(off + INIT_OUT.at.flags2, Number((o.flags >> 32n) & 0xffffffffn), true);
  return INIT_OUT.size;
}

/**
 * A notification telling the kernel to drop its cached attributes of `ino`
 * and its cached data from `offset` for `length` bytes (0: to the end;
 * offset -1: attributes only).
 */
export function encodeInvalInode(
  ino: number,
  offset: number,
  length: number,
): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(OUT_HEADER_SIZE + INVAL_INODE.size);
  const v = new DataView(b.buffer);
  setHeader(v, 0, b.byteLength, NOTIFY.INVAL_INODE, 0); // notifications carry a positive code
  INVAL_INODE.write(v, OUT_HEADER_SIZE, { ino, offset, length });
  return b;
}

/** A notification telling the kernel to forget the dentry `name` in directory `parent`. */
export function encodeInvalEntry(parent: number, name: string): Uint8Array<ArrayBuffer> {
  const nameBytes = enc.encode(name);
  const at = OUT_HEADER_SIZE + INVAL_ENTRY.size;
  const b = new Uint8Array(at + nameBytes.byteLength + 1);
  const v = new DataView(b.buffer);
  setHeader(v, 0, b.byteLength, NOTIFY.INVAL_ENTRY, 0);
  INVAL_ENTRY.write(v, OUT_HEADER_SIZE, { parent, namelen: nameBytes.byteLength });
  b.set(nameBytes, at); // the NUL after it is the array's zero
  return b;
}

const enc = new TextEncoder();

/** Rounds a record length up to the dirent alignment (8). */
function direntAlign(n: number): number {
  return (n + DIRENT_ALIGN - 1) & ~(DIRENT_ALIGN - 1);
}

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
    return this;
  }

  /** Bytes packed so far. */
  get length(): number {
    return this.#pos - this.#start;
  }

  /** Adds one entry (as a dirent or a direntplus, per `reset`); false if it does not fit. */
  add(e: DirEntry): boolean {
    const fixed = this.#plus ? DIRENTPLUS_SIZE : DIRENT.size;
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
      if (e.entry) writeEntryOut(v, d + DIRENTPLUS.entry_out, e.entry);
      else this.#buf.fill(0, d, d + DIRENTPLUS.dirent); // nodeid 0: the kernel links nothing
      d += DIRENTPLUS.dirent;
    }
    DIRENT.write(v, d, e);
    v.setUint32(d + DIRENT.at.namelen, r.written, true);
    v.setUint32(d + DIRENT.at.type, (e.type & S_IFMT) >>> 12, true);
    this.#buf.fill(0, nameAt + r.written, this.#pos + rec);
    this.#pos += rec;
    return true;
  }
}
