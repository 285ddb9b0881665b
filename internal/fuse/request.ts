/**
 * Decoding of FUSE requests read from /dev/fuse into a typed union.
 *
 * One `read()` of the device returns exactly one request: `fuse_in_header`
 * (40 bytes), an opcode-specific struct, then NUL-terminated names or WRITE
 * data. The tables drive the decoding: the opcode table (abi.ts) says which
 * struct follows the header, how many of its bytes the kernel sends and how
 * many names follow; `SHAPES` below maps struct fields to request properties
 * and names to their properties; codec.ts reads the fields at the offsets of
 * structs.ts. Only what the tables cannot say is code: WRITE data, the
 * BATCH_FORGET entries, GETATTR's optional fh and INIT's 64-bit flags. An
 * opcode we do not interpret keeps its body as a view, unchecked.
 *
 * The decoder trusts nothing: it parses by the header's `len` (which must
 * equal the bytes given), checks every struct and name against the end of the
 * body, and returns a `DecodeError` instead of throwing, so malformed input
 * can never crash the session. The dispatcher (dispatch.ts) answers a
 * DecodeError that carries a `unique` with an errno (ENOSYS for an unknown
 * opcode, EIO otherwise).
 *
 * Extension headers (`total_extlen`, 7.38) sit at the end of the request; they
 * are cut off the body before parsing. We never negotiate a feature that
 * produces them, so they are ignored.
 *
 * Performance: offsets and accessors are resolved once at load; a request is
 * one object filled by a loop over them; WRITE data is a `subarray` view into
 * the caller's buffer, never a copy. A caller that decodes many requests can
 * pass its own DataView over the buffer.
 *
 * @module
 */

import { FUSE_GETATTR_FH, InitFlag, OPCODES, type OpName, opName } from "./abi.ts";
import { getU64, offsets, StructReader } from "./codec.ts";
import { FIELD_SIZE, sizeOf } from "./structs.ts";

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
interface RequestBase {
  opcode: number;
  unique: number;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

interface LookupRequest extends RequestBase {
  op: "LOOKUP" | "UNLINK" | "RMDIR" | "REMOVEXATTR";
  name: string;
}
interface ForgetRequest extends RequestBase {
  op: "FORGET";
  nlookup: number;
}
interface ForgetOne {
  nodeid: number;
  nlookup: number;
}
interface BatchForgetRequest extends RequestBase {
  op: "BATCH_FORGET";
  forgets: ForgetOne[];
}
interface GetattrRequest extends RequestBase {
  op: "GETATTR";
  getattrFlags: number;
  /** Present only when the kernel set FUSE_GETATTR_FH. */
  fh: number | undefined;
}
interface SetattrRequest extends RequestBase {
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
interface ReadlinkRequest extends RequestBase {
  op: "READLINK" | "STATFS" | "DESTROY";
}
interface SymlinkRequest extends RequestBase {
  op: "SYMLINK";
  name: string;
  target: string;
}
interface MknodRequest extends RequestBase {
  op: "MKNOD";
  mode: number;
  rdev: number;
  umask: number;
  name: string;
}
interface MkdirRequest extends RequestBase {
  op: "MKDIR";
  mode: number;
  umask: number;
  name: string;
}
interface RenameRequest extends RequestBase {
  op: "RENAME" | "RENAME2";
  newdir: number;
  /** RENAME_* flags; always 0 for RENAME. */
  flags: number;
  name: string;
  newName: string;
}
interface LinkRequest extends RequestBase {
  op: "LINK";
  oldnodeid: number;
  name: string;
}
interface OpenRequest extends RequestBase {
  op: "OPEN" | "OPENDIR";
  flags: number;
  openFlags: number;
}
interface ReadRequest extends RequestBase {
  op: "READ" | "READDIR" | "READDIRPLUS";
  fh: number;
  offset: number;
  size: number;
  readFlags: number;
  flags: number;
}
interface WriteRequest extends RequestBase {
  op: "WRITE";
  fh: number;
  offset: number;
  size: number;
  writeFlags: number;
  flags: number;
  /** A view into the request buffer: valid only until the request is answered. */
  data: Uint8Array;
}
interface ReleaseRequest extends RequestBase {
  op: "RELEASE" | "RELEASEDIR";
  fh: number;
  flags: number;
  releaseFlags: number;
}
interface FsyncRequest extends RequestBase {
  op: "FSYNC" | "FSYNCDIR";
  fh: number;
  fsyncFlags: number;
}
interface FlushRequest extends RequestBase {
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
interface CreateRequest extends RequestBase {
  op: "CREATE";
  flags: number;
  mode: number;
  umask: number;
  openFlags: number;
  name: string;
}
interface InterruptRequest extends RequestBase {
  op: "INTERRUPT";
  /** The `unique` of the request to interrupt. */
  target: number;
}
interface AccessRequest extends RequestBase {
  op: "ACCESS";
  mask: number;
}
interface GetxattrRequest extends RequestBase {
  op: "GETXATTR";
  size: number;
  name: string;
}
interface ListxattrRequest extends RequestBase {
  op: "LISTXATTR";
  size: number;
}
/** A known opcode the session never implements: only the header is decoded. */
interface OtherRequest extends RequestBase {
  /** Every opcode `SHAPES` leaves out. */
  op: Exclude<OpName, keyof typeof SHAPES>;
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

const HDR = sizeOf("in_header");
const H = offsets("in_header", [
  "len",
  "opcode",
  "unique",
  "nodeid",
  "uid",
  "gid",
  "pid",
  "total_extlen",
]);

/** Whatever the tables cannot say about an opcode: it completes the request or refuses it. */
type Finish = (
  req: Record<string, unknown>,
  v: DataView,
  bytes: Uint8Array,
  end: number,
) => DecodeError | null;

/** How to decode the opcodes the session interprets, beyond what the opcode table says. */
interface Shape {
  /** JS property → field of the opcode's request struct. */
  readonly fields?: Readonly<Record<string, string>>;
  /** The properties of the NUL-terminated names that follow the struct, in order. */
  readonly names?: readonly string[];
  readonly finish?: Finish;
}

const NAME = ["name"] as const;
const TWO_NAMES = ["name", "newName"] as const;
const READ_IN = {
  fh: "fh",
  offset: "offset",
  size: "size",
  readFlags: "read_flags",
  flags: "flags",
};
const RELEASE_IN = { fh: "fh", flags: "flags", releaseFlags: "release_flags" };
const FSYNC_IN = { fh: "fh", fsyncFlags: "fsync_flags" };
const OPEN_IN = { flags: "flags", openFlags: "open_flags" };

const GETATTR_FH = HDR + offsets("getattr_in", ["fh"]).fh;
const BATCH = offsets("batch_forget_in", ["count"]);
const FORGET_ONE = sizeOf("forget_one");
const WRITE_DATA = HDR + sizeOf("write_in");
const BATCH_FORGETS = HDR + sizeOf("batch_forget_in");
const ONE = offsets("forget_one", ["nodeid", "nlookup"]);
const INIT_IN = offsets("init_in", ["flags", "flags2"]);
const INIT_EXT = InitFlag.INIT_EXT!;

const SHAPES = {
  LOOKUP: { names: NAME },
  UNLINK: { names: NAME },
  RMDIR: { names: NAME },
  REMOVEXATTR: { names: NAME },
  FORGET: { fields: { nlookup: "nlookup" } },
  BATCH_FORGET: { finish: batchForgets },
  GETATTR: { fields: { getattrFlags: "getattr_flags" }, finish: getattrFh },
  SETATTR: {
    fields: {
      valid: "valid",
      fh: "fh",
      size: "size",
      atime: "atime",
      mtime: "mtime",
      ctime: "ctime",
      atimensec: "atimensec",
      mtimensec: "mtimensec",
      ctimensec: "ctimensec",
      mode: "mode",
      newUid: "uid",
      newGid: "gid",
    },
  },
  READLINK: {},
  STATFS: {},
  DESTROY: {},
  SYMLINK: { names: ["name", "target"] },
  MKNOD: { fields: { mode: "mode", rdev: "rdev", umask: "umask" }, names: NAME },
  MKDIR: { fields: { mode: "mode", umask: "umask" }, names: NAME },
  RENAME: { fields: { newdir: "newdir" }, names: TWO_NAMES, finish: noRenameFlags },
  RENAME2: { fields: { newdir: "newdir", flags: "flags" }, names: TWO_NAMES },
  LINK: { fields: { oldnodeid: "oldnodeid" }, names: NAME },
  OPEN: { fields: OPEN_IN },
  OPENDIR: { fields: OPEN_IN },
  READ: { fields: READ_IN },
  READDIR: { fields: READ_IN },
  READDIRPLUS: { fields: READ_IN },
  WRITE: {
    fields: { fh: "fh", offset: "offset", size: "size", writeFlags: "write_flags", flags: "flags" },
    finish: writeData,
  },
  RELEASE: { fields: RELEASE_IN },
  RELEASEDIR: { fields: RELEASE_IN },
  FSYNC: { fields: FSYNC_IN },
  FSYNCDIR: { fields: FSYNC_IN },
  FLUSH: { fields: { fh: "fh" } },
  INIT: {
    fields: { major: "major", minor: "minor", maxReadahead: "max_readahead" },
    finish: initFlags,
  },
  CREATE: {
    fields: { flags: "flags", mode: "mode", umask: "umask", openFlags: "open_flags" },
    names: NAME,
  },
  INTERRUPT: { fields: { target: "unique" } },
  ACCESS: { fields: { mask: "mask" } },
  GETXATTR: { fields: { size: "size" }, names: NAME },
  LISTXATTR: { fields: { size: "size" } },
} as const satisfies Partial<Record<OpName, Shape>>;

/** One opcode's decoding, resolved at load from the opcode table and its shape. */
interface Decoding {
  readonly op: string;
  /** Null for an opcode we do not interpret: its body is passed on as a view. */
  readonly shape: {
    readonly bodySize: number;
    readonly reader: StructReader<string> | null;
    readonly names: readonly string[];
    readonly finish: Finish | null;
  } | null;
}

/** Indexed by opcode number. */
const DECODINGS: (Decoding | undefined)[] = [];
for (const info of OPCODES) {
  const shape: Shape | undefined = (SHAPES as Partial<Record<string, Shape>>)[info.name];
  if (shape === undefined) {
    DECODINGS[info.code] = { op: info.name, shape: null };
    continue;
  }
  const names = shape.names ?? [];
  if (names.length !== info.names) {
    throw new Error(`${info.name} carries ${info.names} names, its shape reads ${names.length}`);
  }
  const fields = shape.fields ?? {};
  const reader = Object.keys(fields).length > 0 ? new StructReader(info.request!, fields) : null;
  DECODINGS[info.code] = {
    op: info.name,
    shape: { bodySize: info.bodySize, reader, names, finish: shape.finish ?? null },
  };
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
  const len = v.getUint32(H.len, true);
  const opcode = v.getUint32(H.opcode, true);
  const unique = getU64(v, H.unique);
  if (len !== length || len > bytes.byteLength) {
    return new DecodeError(
      "LengthMismatch",
      `Header length "${len}" does not match the ${length} bytes read`,
      opcode,
      unique,
    );
  }
  const end = len - v.getUint16(H.total_extlen, true) * 8;
  if (end < HDR) {
    return new DecodeError(
      "LengthMismatch",
      `Extension length exceeds request length "${len}"`,
      opcode,
      unique,
    );
  }
  const d = DECODINGS[opcode];
  if (d === undefined) {
    return new DecodeError("UnknownOpcode", `Unknown opcode "${opcode}"`, opcode, unique);
  }
  const req: Record<string, unknown> = {
    op: d.op,
    opcode,
    unique,
    nodeid: getU64(v, H.nodeid),
    uid: v.getUint32(H.uid, true),
    gid: v.getUint32(H.gid, true),
    pid: v.getUint32(H.pid, true),
  };
  const s = d.shape;
  if (s === null) {
    req.body = bytes.subarray(HDR, end);
    return req as unknown as Request;
  }
  const body = end - HDR;
  if (body < s.bodySize) return short(opcode, unique, body, s.bodySize);
  s.reader?.read(v, HDR, req);
  let at = HDR + s.bodySize;
  for (let i = 0; i < s.names.length; i++) {
    const nul = at < end ? bytes.indexOf(0, at) : -1;
    if (nul < 0 || nul >= end || nul === at) return missingName(opcode, unique);
    req[s.names[i]!] = dec.decode(bytes.subarray(at, nul));
    at = nul + 1;
  }
  const refused = s.finish?.(req, v, bytes, end) ?? null;
  return refused ?? req as unknown as Request;
}

/** WRITE: the data after write_in, as a view (no copy). */
function writeData(req: Record<string, unknown>, _v: DataView, bytes: Uint8Array, end: number) {
  const size = req.size as number;
  const at = WRITE_DATA;
  if (at + size > end) {
    return short(req.opcode as number, req.unique as number, end - HDR, at - HDR + size);
  }
  req.data = bytes.subarray(at, at + size);
  return null;
}

/** GETATTR: `fh` is meaningful only with FUSE_GETATTR_FH. */
function getattrFh(req: Record<string, unknown>, v: DataView) {
  req.fh = (req.getattrFlags as number) & FUSE_GETATTR_FH ? getU64(v, GETATTR_FH) : undefined;
  return null;
}

/** RENAME has no flags; RENAME2's are in rename2_in. */
function noRenameFlags(req: Record<string, unknown>) {
  req.flags = 0;
  return null;
}

/** INIT: flags2 only if the kernel sent it (7.36) and flagged it (INIT_EXT). */
function initFlags(req: Record<string, unknown>, v: DataView, _bytes: Uint8Array, end: number) {
  let flags = BigInt(v.getUint32(HDR + INIT_IN.flags, true));
  if ((flags & INIT_EXT) !== 0n && end >= HDR + INIT_IN.flags2 + FIELD_SIZE.u32) {
    flags |= BigInt(v.getUint32(HDR + INIT_IN.flags2, true)) << 32n;
  }
  req.flags = flags;
  return null;
}

/** BATCH_FORGET: `count` forget_one entries after batch_forget_in. */
function batchForgets(req: Record<string, unknown>, v: DataView, _bytes: Uint8Array, end: number) {
  const count = v.getUint32(HDR + BATCH.count, true);
  const at = BATCH_FORGETS;
  if (at + count * FORGET_ONE > end) {
    return short(
      req.opcode as number,
      req.unique as number,
      end - HDR,
      at - HDR + count * FORGET_ONE,
    );
  }
  const forgets: ForgetOne[] = new Array(count);
  for (let i = 0, p = at; i < count; i++, p += FORGET_ONE) {
    forgets[i] = { nodeid: getU64(v, p + ONE.nodeid), nlookup: getU64(v, p + ONE.nlookup) };
  }
  req.forgets = forgets;
  return null;
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
