/**
 * Decoding of FUSE requests read from /dev/fuse into a typed union.
 *
 * One `read()` of the device returns exactly one request: `fuse_in_header`
 * (40 bytes), an opcode-specific struct, then NUL-terminated names or WRITE
 * data. The decoder trusts nothing: it parses by the header's `len` (which
 * must equal the bytes given), checks every struct and name against the end
 * of the body, and returns a `DecodeError` instead of throwing, so malformed
 * input can never crash the session. The session answers a DecodeError that
 * carries a `unique` with an errno (ENOSYS for an unknown opcode, EIO
 * otherwise).
 *
 * Extension headers (`total_extlen`, 7.38) sit at the end of the request; they
 * are cut off the body before parsing. We never negotiate a feature that
 * produces them, so they are ignored.
 *
 * Performance: the hot opcodes (READ, WRITE, GETATTR, LOOKUP) decode into one
 * flat object; offsets are module constants taken from abi.ts once at load;
 * WRITE data is a `subarray` view into the caller's buffer, never a copy. A
 * caller that decodes many requests can pass its own DataView over the buffer.
 *
 * @module
 */

import { FUSE_GETATTR_FH, InitFlag, offsetOf, Op, opName, sizeOf } from "./abi.ts";

export type DecodeErrorKind =
  | "ShortHeader"
  | "LengthMismatch"
  | "ShortRead"
  | "MissingName"
  | "UnknownOpcode";

/** A request that cannot be decoded. `unique` is set when the header was readable, so it can be answered. */
export class DecodeError extends Error {
  constructor(
    readonly kind: DecodeErrorKind,
    message: string,
    readonly opcode?: number,
    readonly unique?: number,
  ) {
    super(message);
    this.name = "DecodeError";
  }
}

/** Fields every request carries, from `fuse_in_header`. */
export interface RequestBase {
  opcode: number;
  unique: number;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

export interface LookupRequest extends RequestBase {
  op: "LOOKUP" | "UNLINK" | "RMDIR" | "REMOVEXATTR";
  name: string;
}
export interface ForgetRequest extends RequestBase {
  op: "FORGET";
  nlookup: number;
}
export interface ForgetOne {
  nodeid: number;
  nlookup: number;
}
export interface BatchForgetRequest extends RequestBase {
  op: "BATCH_FORGET";
  forgets: ForgetOne[];
}
export interface GetattrRequest extends RequestBase {
  op: "GETATTR";
  getattrFlags: number;
  /** Present only when the kernel set FUSE_GETATTR_FH. */
  fh: number | undefined;
}
export interface SetattrRequest extends RequestBase {
  op: "SETATTR";
  /** FATTR_* bits: which of the fields below are meaningful. */
  valid: number;
  fh: number;
  size: number;
  atime: number;
  atimensec: number;
  mtime: number;
  mtimensec: number;
  ctime: number;
  ctimensec: number;
  mode: number;
  /** The owner to set (FATTR_UID); `uid` is the caller's, as in every request. */
  newUid: number;
  /** The group to set (FATTR_GID). */
  newGid: number;
}
export interface ReadlinkRequest extends RequestBase {
  op: "READLINK" | "STATFS" | "DESTROY";
}
export interface SymlinkRequest extends RequestBase {
  op: "SYMLINK";
  name: string;
  target: string;
}
export interface MknodRequest extends RequestBase {
  op: "MKNOD";
  mode: number;
  rdev: number;
  umask: number;
  name: string;
}
export interface MkdirRequest extends RequestBase {
  op: "MKDIR";
  mode: number;
  umask: number;
  name: string;
}
export interface RenameRequest extends RequestBase {
  op: "RENAME" | "RENAME2";
  newdir: number;
  /** RENAME_* flags; always 0 for RENAME. */
  flags: number;
  name: string;
  newName: string;
}
export interface LinkRequest extends RequestBase {
  op: "LINK";
  oldnodeid: number;
  name: string;
}
export interface OpenRequest extends RequestBase {
  op: "OPEN" | "OPENDIR";
  flags: number;
  openFlags: number;
}
export interface ReadRequest extends RequestBase {
  op: "READ" | "READDIR" | "READDIRPLUS";
  fh: number;
  offset: number;
  size: number;
  readFlags: number;
  flags: number;
}
export interface WriteRequest extends RequestBase {
  op: "WRITE";
  fh: number;
  offset: number;
  size: number;
  writeFlags: number;
  flags: number;
  /** A view into the request buffer: valid only until the request is answered. */
  data: Uint8Array;
}
export interface ReleaseRequest extends RequestBase {
  op: "RELEASE" | "RELEASEDIR";
  fh: number;
  flags: number;
  releaseFlags: number;
}
export interface FsyncRequest extends RequestBase {
  op: "FSYNC" | "FSYNCDIR";
  fh: number;
  fsyncFlags: number;
}
export interface FlushRequest extends RequestBase {
  op: "FLUSH";
  fh: number;
}
export interface InitRequest extends RequestBase {
  op: "INIT";
  major: number;
  minor: number;
  maxReadahead: number;
  /** flags | flags2 << 32 (flags2 only when the kernel set INIT_EXT). */
  flags: bigint;
}
export interface CreateRequest extends RequestBase {
  op: "CREATE";
  flags: number;
  mode: number;
  umask: number;
  openFlags: number;
  name: string;
}
export interface InterruptRequest extends RequestBase {
  op: "INTERRUPT";
  /** The `unique` of the request to interrupt. */
  target: number;
}
export interface AccessRequest extends RequestBase {
  op: "ACCESS";
  mask: number;
}
export interface GetxattrRequest extends RequestBase {
  op: "GETXATTR";
  size: number;
  name: string;
}
export interface ListxattrRequest extends RequestBase {
  op: "LISTXATTR";
  size: number;
}
/** A known opcode the session never implements: only the header is decoded. */
export interface OtherRequest extends RequestBase {
  op:
    | "SETXATTR"
    | "GETLK"
    | "SETLK"
    | "SETLKW"
    | "BMAP"
    | "IOCTL"
    | "POLL"
    | "NOTIFY_REPLY"
    | "FALLOCATE"
    | "LSEEK"
    | "COPY_FILE_RANGE"
    | "SETUPMAPPING"
    | "REMOVEMAPPING"
    | "SYNCFS"
    | "TMPFILE"
    | "STATX"
    | "COPY_FILE_RANGE_64";
  /** The body after the header, as a view. */
  body: Uint8Array;
}

export type Request =
  | LookupRequest
  | ForgetRequest
  | BatchForgetRequest
  | GetattrRequest
  | SetattrRequest
  | ReadlinkRequest
  | SymlinkRequest
  | MknodRequest
  | MkdirRequest
  | RenameRequest
  | LinkRequest
  | OpenRequest
  | ReadRequest
  | WriteRequest
  | ReleaseRequest
  | FsyncRequest
  | FlushRequest
  | InitRequest
  | CreateRequest
  | InterruptRequest
  | AccessRequest
  | GetxattrRequest
  | ListxattrRequest
  | OtherRequest;

// Offsets from abi.ts, resolved once.
const HDR = sizeOf("in_header");
const H_LEN = offsetOf("in_header", "len");
const H_OPCODE = offsetOf("in_header", "opcode");
const H_UNIQUE = offsetOf("in_header", "unique");
const H_NODEID = offsetOf("in_header", "nodeid");
const H_UID = offsetOf("in_header", "uid");
const H_GID = offsetOf("in_header", "gid");
const H_PID = offsetOf("in_header", "pid");
const H_EXTLEN = offsetOf("in_header", "total_extlen");

const READ_IN = sizeOf("read_in");
const RI_FH = HDR + offsetOf("read_in", "fh");
const RI_OFFSET = HDR + offsetOf("read_in", "offset");
const RI_SIZE = HDR + offsetOf("read_in", "size");
const RI_READ_FLAGS = HDR + offsetOf("read_in", "read_flags");
const RI_FLAGS = HDR + offsetOf("read_in", "flags");

const WRITE_IN = sizeOf("write_in");
const WI_FH = HDR + offsetOf("write_in", "fh");
const WI_OFFSET = HDR + offsetOf("write_in", "offset");
const WI_SIZE = HDR + offsetOf("write_in", "size");
const WI_WRITE_FLAGS = HDR + offsetOf("write_in", "write_flags");
const WI_FLAGS = HDR + offsetOf("write_in", "flags");

const SA = HDR; // setattr_in starts right after the header
const SETATTR_IN = sizeOf("setattr_in");

const INIT_IN_COMPAT = 16; // major, minor, max_readahead, flags (before 7.36)
const INIT_IN_FLAGS2 = offsetOf("init_in", "flags2");
const INIT_EXT = InitFlag.INIT_EXT!;

const TWO32 = 4294967296;

/** Reads a u64 as a number (exact below 2^53; see abi.ts). */
function u64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO32;
}

const dec = new TextDecoder();

/**
 * Decodes one request. `length` (default: all of `bytes`) is how many bytes
 * the read returned; the header's `len` must equal it. Pass `view` to reuse a
 * DataView over the same buffer (it must start at `bytes.byteOffset`).
 */
export function decodeRequest(
  bytes: Uint8Array,
  length: number = bytes.byteLength,
  view?: DataView,
): Request | DecodeError {
  if (length < HDR || bytes.byteLength < HDR) {
    return new DecodeError("ShortHeader", `Request of ${length} bytes is shorter than the header`);
  }
  const v = view ?? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = v.getUint32(H_LEN, true);
  const opcode = v.getUint32(H_OPCODE, true);
  const unique = u64(v, H_UNIQUE);
  if (len !== length || len > bytes.byteLength) {
    return new DecodeError(
      "LengthMismatch",
      `Header length "${len}" does not match the ${length} bytes read`,
      opcode,
      unique,
    );
  }
  const end = len - v.getUint16(H_EXTLEN, true) * 8;
  if (end < HDR) {
    return new DecodeError(
      "LengthMismatch",
      `Extension length exceeds request length "${len}"`,
      opcode,
      unique,
    );
  }
  const nodeid = u64(v, H_NODEID);
  const uid = v.getUint32(H_UID, true);
  const gid = v.getUint32(H_GID, true);
  const pid = v.getUint32(H_PID, true);
  const body = end - HDR;

  switch (opcode) {
    case Op.READ:
    case Op.READDIR:
    case Op.READDIRPLUS: {
      if (body < READ_IN) return short(opcode, unique, body, READ_IN);
      return {
        op: opcode === Op.READ ? "READ" : opcode === Op.READDIR ? "READDIR" : "READDIRPLUS",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        fh: u64(v, RI_FH),
        offset: u64(v, RI_OFFSET),
        size: v.getUint32(RI_SIZE, true),
        readFlags: v.getUint32(RI_READ_FLAGS, true),
        flags: v.getUint32(RI_FLAGS, true),
      };
    }
    case Op.WRITE: {
      if (body < WRITE_IN) return short(opcode, unique, body, WRITE_IN);
      const size = v.getUint32(WI_SIZE, true);
      const dataAt = HDR + WRITE_IN;
      if (dataAt + size > end) return short(opcode, unique, body, WRITE_IN + size);
      return {
        op: "WRITE",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        fh: u64(v, WI_FH),
        offset: u64(v, WI_OFFSET),
        size,
        writeFlags: v.getUint32(WI_WRITE_FLAGS, true),
        flags: v.getUint32(WI_FLAGS, true),
        data: bytes.subarray(dataAt, dataAt + size),
      };
    }
    case Op.GETATTR: {
      if (body < 16) return short(opcode, unique, body, 16);
      const getattrFlags = v.getUint32(HDR, true);
      return {
        op: "GETATTR",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        getattrFlags,
        fh: getattrFlags & FUSE_GETATTR_FH ? u64(v, HDR + 8) : undefined,
      };
    }
    case Op.LOOKUP:
    case Op.UNLINK:
    case Op.RMDIR:
    case Op.REMOVEXATTR: {
      const name = cstring(bytes, HDR, end);
      if (name === null) return missingName(opcode, unique);
      return {
        op: opcode === Op.LOOKUP
          ? "LOOKUP"
          : opcode === Op.UNLINK
          ? "UNLINK"
          : opcode === Op.RMDIR
          ? "RMDIR"
          : "REMOVEXATTR",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        name,
      };
    }
    case Op.FORGET: {
      if (body < 8) return short(opcode, unique, body, 8);
      return { op: "FORGET", opcode, unique, nodeid, uid, gid, pid, nlookup: u64(v, HDR) };
    }
    case Op.BATCH_FORGET: {
      if (body < 8) return short(opcode, unique, body, 8);
      const count = v.getUint32(HDR, true);
      if (8 + count * 16 > body) return short(opcode, unique, body, 8 + count * 16);
      const forgets: ForgetOne[] = new Array(count);
      for (let i = 0, p = HDR + 8; i < count; i++, p += 16) {
        forgets[i] = { nodeid: u64(v, p), nlookup: u64(v, p + 8) };
      }
      return { op: "BATCH_FORGET", opcode, unique, nodeid, uid, gid, pid, forgets };
    }
    case Op.SETATTR: {
      if (body < SETATTR_IN) return short(opcode, unique, body, SETATTR_IN);
      return {
        op: "SETATTR",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        valid: v.getUint32(SA, true),
        fh: u64(v, SA + 8),
        size: u64(v, SA + 16),
        atime: i64(v, SA + 32),
        mtime: i64(v, SA + 40),
        ctime: i64(v, SA + 48),
        atimensec: v.getUint32(SA + 56, true),
        mtimensec: v.getUint32(SA + 60, true),
        ctimensec: v.getUint32(SA + 64, true),
        mode: v.getUint32(SA + 68, true),
        newUid: v.getUint32(SA + 76, true),
        newGid: v.getUint32(SA + 80, true),
      };
    }
    case Op.READLINK:
    case Op.STATFS:
    case Op.DESTROY:
      return {
        op: opcode === Op.READLINK ? "READLINK" : opcode === Op.STATFS ? "STATFS" : "DESTROY",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
      };
    case Op.SYMLINK: {
      const name = cstring(bytes, HDR, end);
      if (name === null) return missingName(opcode, unique);
      const target = cstring(bytes, HDR + cstringBytes(bytes, HDR) + 1, end);
      if (target === null) return missingName(opcode, unique);
      return { op: "SYMLINK", opcode, unique, nodeid, uid, gid, pid, name, target };
    }
    case Op.MKNOD: {
      if (body < 16) return short(opcode, unique, body, 16);
      const name = cstring(bytes, HDR + 16, end);
      if (name === null) return missingName(opcode, unique);
      return {
        op: "MKNOD",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        mode: v.getUint32(HDR, true),
        rdev: v.getUint32(HDR + 4, true),
        umask: v.getUint32(HDR + 8, true),
        name,
      };
    }
    case Op.MKDIR: {
      if (body < 8) return short(opcode, unique, body, 8);
      const name = cstring(bytes, HDR + 8, end);
      if (name === null) return missingName(opcode, unique);
      return {
        op: "MKDIR",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        mode: v.getUint32(HDR, true),
        umask: v.getUint32(HDR + 4, true),
        name,
      };
    }
    case Op.RENAME:
    case Op.RENAME2: {
      const fixed = opcode === Op.RENAME ? 8 : 16;
      if (body < fixed) return short(opcode, unique, body, fixed);
      const at = HDR + fixed;
      const name = cstring(bytes, at, end);
      if (name === null) return missingName(opcode, unique);
      const newName = cstring(bytes, at + cstringBytes(bytes, at) + 1, end);
      if (newName === null) return missingName(opcode, unique);
      return {
        op: opcode === Op.RENAME ? "RENAME" : "RENAME2",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        newdir: u64(v, HDR),
        flags: opcode === Op.RENAME ? 0 : v.getUint32(HDR + 8, true),
        name,
        newName,
      };
    }
    case Op.LINK: {
      if (body < 8) return short(opcode, unique, body, 8);
      const name = cstring(bytes, HDR + 8, end);
      if (name === null) return missingName(opcode, unique);
      return { op: "LINK", opcode, unique, nodeid, uid, gid, pid, oldnodeid: u64(v, HDR), name };
    }
    case Op.OPEN:
    case Op.OPENDIR: {
      if (body < 8) return short(opcode, unique, body, 8);
      return {
        op: opcode === Op.OPEN ? "OPEN" : "OPENDIR",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        flags: v.getUint32(HDR, true),
        openFlags: v.getUint32(HDR + 4, true),
      };
    }
    case Op.RELEASE:
    case Op.RELEASEDIR: {
      if (body < 24) return short(opcode, unique, body, 24);
      return {
        op: opcode === Op.RELEASE ? "RELEASE" : "RELEASEDIR",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        fh: u64(v, HDR),
        flags: v.getUint32(HDR + 8, true),
        releaseFlags: v.getUint32(HDR + 12, true),
      };
    }
    case Op.FSYNC:
    case Op.FSYNCDIR: {
      if (body < 16) return short(opcode, unique, body, 16);
      return {
        op: opcode === Op.FSYNC ? "FSYNC" : "FSYNCDIR",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        fh: u64(v, HDR),
        fsyncFlags: v.getUint32(HDR + 8, true),
      };
    }
    case Op.FLUSH: {
      if (body < 24) return short(opcode, unique, body, 24);
      return { op: "FLUSH", opcode, unique, nodeid, uid, gid, pid, fh: u64(v, HDR) };
    }
    case Op.INIT: {
      // 16 bytes before 7.36, 64 after: read flags2 only if present and flagged.
      if (body < INIT_IN_COMPAT) return short(opcode, unique, body, INIT_IN_COMPAT);
      let flags = BigInt(v.getUint32(HDR + 12, true));
      if ((flags & INIT_EXT) !== 0n && body >= INIT_IN_FLAGS2 + 4) {
        flags |= BigInt(v.getUint32(HDR + INIT_IN_FLAGS2, true)) << 32n;
      }
      return {
        op: "INIT",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        major: v.getUint32(HDR, true),
        minor: v.getUint32(HDR + 4, true),
        maxReadahead: v.getUint32(HDR + 8, true),
        flags,
      };
    }
    case Op.CREATE: {
      if (body < 16) return short(opcode, unique, body, 16);
      const name = cstring(bytes, HDR + 16, end);
      if (name === null) return missingName(opcode, unique);
      return {
        op: "CREATE",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        flags: v.getUint32(HDR, true),
        mode: v.getUint32(HDR + 4, true),
        umask: v.getUint32(HDR + 8, true),
        openFlags: v.getUint32(HDR + 12, true),
        name,
      };
    }
    case Op.INTERRUPT: {
      if (body < 8) return short(opcode, unique, body, 8);
      return { op: "INTERRUPT", opcode, unique, nodeid, uid, gid, pid, target: u64(v, HDR) };
    }
    case Op.ACCESS: {
      if (body < 8) return short(opcode, unique, body, 8);
      return { op: "ACCESS", opcode, unique, nodeid, uid, gid, pid, mask: v.getUint32(HDR, true) };
    }
    case Op.GETXATTR: {
      if (body < 8) return short(opcode, unique, body, 8);
      const name = cstring(bytes, HDR + 8, end);
      if (name === null) return missingName(opcode, unique);
      return {
        op: "GETXATTR",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        size: v.getUint32(HDR, true),
        name,
      };
    }
    case Op.LISTXATTR: {
      if (body < 8) return short(opcode, unique, body, 8);
      return {
        op: "LISTXATTR",
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        size: v.getUint32(HDR, true),
      };
    }
    case Op.SETXATTR:
    case Op.GETLK:
    case Op.SETLK:
    case Op.SETLKW:
    case Op.BMAP:
    case Op.IOCTL:
    case Op.POLL:
    case Op.NOTIFY_REPLY:
    case Op.FALLOCATE:
    case Op.LSEEK:
    case Op.COPY_FILE_RANGE:
    case Op.SETUPMAPPING:
    case Op.REMOVEMAPPING:
    case Op.SYNCFS:
    case Op.TMPFILE:
    case Op.STATX:
    case Op.COPY_FILE_RANGE_64:
      return {
        op: opName(opcode) as OtherRequest["op"],
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
        body: bytes.subarray(HDR, end),
      };
    default:
      return new DecodeError("UnknownOpcode", `Unknown opcode "${opcode}"`, opcode, unique);
  }
}

function i64(v: DataView, off: number): number {
  const hi = v.getInt32(off + 4, true);
  return hi >= 0 ? u64(v, off) : Number(v.getBigInt64(off, true));
}

function short(opcode: number, unique: number, body: number, need: number): DecodeError {
  return new DecodeError(
    "ShortRead",
    `${opName(opcode)} body of ${body} bytes is shorter than the ${need} bytes required`,
    opcode,
    unique,
  );
}

function missingName(opcode: number, unique: number): DecodeError {
  return new DecodeError(
    "MissingName",
    `${opName(opcode)} has a missing, empty or unterminated name`,
    opcode,
    unique,
  );
}

/** Length of the NUL-terminated string at `at` (bounded by the buffer); only called after cstring() succeeded there. */
function cstringBytes(bytes: Uint8Array, at: number): number {
  return bytes.indexOf(0, at) - at;
}

/** The non-empty NUL-terminated string at `at`, ending before `end`; null if absent. */
function cstring(bytes: Uint8Array, at: number, end: number): string | null {
  if (at >= end) return null;
  const nul = bytes.indexOf(0, at);
  if (nul < 0 || nul >= end || nul === at) return null;
  return dec.decode(bytes.subarray(at, nul));
}
