/**
 * The Linux FUSE kernel ABI (`include/uapi/linux/fuse.h`) written as data:
 * opcodes, INIT flags, FOPEN_* and FATTR_* bits; the struct layouts are in
 * structs.ts.
 *
 * The opcode table drives the codec and the session: for each request it
 * says the struct after the header and how many of its bytes the kernel
 * sends, how many NUL-terminated names follow, and whether the kernel
 * expects a reply.
 *
 * Source of truth: the uapi header of protocol 7.38 installed on the build
 * machine (`/usr/include/linux/fuse.h`, FUSE_KERNEL_MINOR_VERSION 38), which
 * every table and layout was checked against, plus the 7.39 to 7.45 additions
 * (STATX, COPY_FILE_RANGE_64, the extra INIT bits and init_out fields) marked
 * by their minor. The running kernel speaks 7.45.
 *
 * We speak 7.38. The connection uses min(kernel minor, 38), and that is safe
 * because:
 * - every reply struct we send has had its current size since 7.23 (init_out
 *   64 bytes, entry_out 128, attr_out 104, statfs_out 80), so no compat sizes;
 * - the only 7.38 wire change, `fuse_in_header.total_extlen`, is non-zero
 *   only when we negotiate SECURITY_CTX or CREATE_SUPP_GROUP, which we never
 *   do; the decoder still honours it by cutting extensions off the body;
 * - everything newer (STATX, passthrough, resend, io_uring, request timeouts,
 *   64-bit copy_file_range) is gated on an INIT flag we do not request or on an
 *   opcode we answer with ENOSYS, for which the kernel has a fallback.
 *
 * All integers are little-endian on the platforms we run on (x86_64, arm64).
 * u64 fields are decoded into JS numbers: every id the kernel sends back is
 * one we chose (< 2^53), and file offsets beyond 2^53 bytes are not a concern.
 *
 * @module
 */

import { sizeOf, type StructName } from "./structs.ts";

/** The major version of the protocol; a kernel with another major is refused or re-asked. */
export const FUSE_KERNEL_VERSION = 7;
/** The minor version we speak (see the module note). */
export const FUSE_OUR_MINOR = 38;
/** The oldest kernel minor we accept: the first with the reply sizes we send (64-byte init_out). */
export const FUSE_MIN_KERNEL_MINOR = 23;

export interface OpcodeInfo {
  readonly name: string;
  readonly code: number;
  /** Protocol minor that introduced the opcode. */
  readonly minor: number;
  /** The fixed struct right after the header, if any. */
  readonly request: StructName | null;
  /**
   * Bytes of that struct the kernel sends on our connection: its size, or a
   * shorter compat size (INIT before 7.36, SETXATTR without SETXATTR_EXT).
   */
  readonly bodySize: number;
  /** NUL-terminated names after the struct. */
  readonly names: 0 | 1 | 2;
  /** The reply payload after the out header (null: header only or raw data). */
  readonly reply: StructName | "data" | "dirents" | "direntplus" | null;
  /**
   * The kernel expects no reply at all: FORGET, BATCH_FORGET, INTERRUPT (the
   * interrupted request's own reply is the answer) and NOTIFY_REPLY.
   */
  readonly noReply: boolean;
}

type OpSpec = readonly [
  name: string,
  code: number,
  minor: number,
  request: StructName | null,
  names: 0 | 1 | 2,
  reply: OpcodeInfo["reply"],
  extra?: { readonly noReply?: true; readonly bodySize?: number },
];

const NO_REPLY = { noReply: true } as const;

const OP_SPECS = [
  ["LOOKUP", 1, 0, null, 1, "entry_out"],
  ["FORGET", 2, 0, "forget_in", 0, null, NO_REPLY],
  ["GETATTR", 3, 0, "getattr_in", 0, "attr_out"], // getattr_in since 7.9
  ["SETATTR", 4, 1, "setattr_in", 0, "attr_out"],
  ["READLINK", 5, 0, null, 0, "data"],
  ["SYMLINK", 6, 1, null, 2, "entry_out"], // name, then link target
  ["MKNOD", 8, 1, "mknod_in", 1, "entry_out"],
  ["MKDIR", 9, 1, "mkdir_in", 1, "entry_out"],
  ["UNLINK", 10, 1, null, 1, null],
  ["RMDIR", 11, 1, null, 1, null],
  ["RENAME", 12, 1, "rename_in", 2, null],
  ["LINK", 13, 1, "link_in", 1, "entry_out"],
  ["OPEN", 14, 1, "open_in", 0, "open_out"],
  ["READ", 15, 1, "read_in", 0, "data"],
  ["WRITE", 16, 1, "write_in", 0, "write_out"],
  ["STATFS", 17, 0, null, 0, "statfs_out"],
  ["RELEASE", 18, 1, "release_in", 0, null],
  ["FSYNC", 20, 1, "fsync_in", 0, null],
  // name, then the value; 8 bytes (size, flags) unless SETXATTR_EXT, which we never request
  ["SETXATTR", 21, 1, "setxattr_in", 1, null, { bodySize: 8 }],
  ["GETXATTR", 22, 1, "getxattr_in", 1, "getxattr_out"],
  ["LISTXATTR", 23, 1, "getxattr_in", 0, "getxattr_out"],
  ["REMOVEXATTR", 24, 1, null, 1, null],
  ["FLUSH", 25, 1, "flush_in", 0, null],
  // 16 bytes (major, minor, max_readahead, flags) before 7.36
  ["INIT", 26, 0, "init_in", 0, "init_out", { bodySize: 16 }],
  ["OPENDIR", 27, 1, "open_in", 0, "open_out"],
  ["READDIR", 28, 1, "read_in", 0, "dirents"],
  ["RELEASEDIR", 29, 1, "release_in", 0, null],
  ["FSYNCDIR", 30, 2, "fsync_in", 0, null],
  ["GETLK", 31, 7, "lk_in", 0, "lk_out"],
  ["SETLK", 32, 7, "lk_in", 0, null],
  ["SETLKW", 33, 7, "lk_in", 0, null],
  ["ACCESS", 34, 3, "access_in", 0, null],
  ["CREATE", 35, 3, "create_in", 1, "entry_out"], // entry_out then open_out
  ["INTERRUPT", 36, 7, "interrupt_in", 0, null, NO_REPLY],
  ["BMAP", 37, 8, "bmap_in", 0, "bmap_out"],
  ["DESTROY", 38, 8, null, 0, null],
  ["IOCTL", 39, 11, "ioctl_in", 0, "data"],
  ["POLL", 40, 11, "poll_in", 0, "data"],
  ["NOTIFY_REPLY", 41, 15, "notify_retrieve_in", 0, null, NO_REPLY],
  ["BATCH_FORGET", 42, 16, "batch_forget_in", 0, null, NO_REPLY], // + count × forget_one
  ["FALLOCATE", 43, 19, "fallocate_in", 0, null],
  ["READDIRPLUS", 44, 21, "read_in", 0, "direntplus"],
  ["RENAME2", 45, 23, "rename2_in", 2, null],
  ["LSEEK", 46, 24, "lseek_in", 0, "lseek_out"],
  ["COPY_FILE_RANGE", 47, 28, "copy_file_range_in", 0, "write_out"],
  ["SETUPMAPPING", 48, 31, "setupmapping_in", 0, null],
  ["REMOVEMAPPING", 49, 31, "removemapping_in", 0, null],
  ["SYNCFS", 50, 34, "syncfs_in", 0, null],
  ["TMPFILE", 51, 37, "create_in", 1, "entry_out"],
  ["STATX", 52, 39, "statx_in", 0, "data"],
  ["COPY_FILE_RANGE_64", 53, 45, "copy_file_range_in", 0, "data"],
] as const satisfies readonly OpSpec[];

function opcodeInfo([name, code, minor, request, names, reply, extra]: OpSpec): OpcodeInfo {
  const bodySize = extra?.bodySize ?? (request === null ? 0 : sizeOf(request));
  return { name, code, minor, request, bodySize, names, reply, noReply: extra?.noReply === true };
}

/** Every opcode we know, in number order. */
export const OPCODES: readonly OpcodeInfo[] = OP_SPECS.map(opcodeInfo);

/** Opcode number → info; sparse (7 and 19 are unused). */
export const OPCODE_BY_CODE: ReadonlyMap<number, OpcodeInfo> = new Map(
  OPCODES.map((o) => [o.code, o]),
);

/** Opcode numbers by name, for switch statements (from the table above). */
export const Op = Object.fromEntries(OP_SPECS.map(([name, code]) => [name, code])) as {
  readonly [S in (typeof OP_SPECS)[number] as S[0]]: S[1];
};

export type OpName = keyof typeof Op;

/** The name of an opcode number, or "OPCODE_<n>". */
export function opName(code: number): string {
  return OPCODE_BY_CODE.get(code)?.name ?? `OPCODE_${code}`;
}

export interface FlagInfo {
  readonly name: string;
  /** Bit number in the 64-bit flags (bits 32..63 travel in flags2, only with INIT_EXT). */
  readonly bit: number;
  /** Protocol minor that introduced the flag. */
  readonly minor: number;
}

/** INIT capability flags (fuse_init_in/out .flags, and .flags2 for bits 32 and up). */
export const INIT_FLAGS: readonly FlagInfo[] = [
  { name: "ASYNC_READ", bit: 0, minor: 6 },
  { name: "POSIX_LOCKS", bit: 1, minor: 7 },
  { name: "FILE_OPS", bit: 2, minor: 9 },
  { name: "ATOMIC_O_TRUNC", bit: 3, minor: 9 },
  { name: "EXPORT_SUPPORT", bit: 4, minor: 10 },
  { name: "BIG_WRITES", bit: 5, minor: 9 },
  { name: "DONT_MASK", bit: 6, minor: 12 },
  { name: "SPLICE_WRITE", bit: 7, minor: 14 },
  { name: "SPLICE_MOVE", bit: 8, minor: 14 },
  { name: "SPLICE_READ", bit: 9, minor: 14 },
  { name: "FLOCK_LOCKS", bit: 10, minor: 17 },
  { name: "HAS_IOCTL_DIR", bit: 11, minor: 18 },
  { name: "AUTO_INVAL_DATA", bit: 12, minor: 20 },
  { name: "DO_READDIRPLUS", bit: 13, minor: 21 },
  { name: "READDIRPLUS_AUTO", bit: 14, minor: 21 },
  { name: "ASYNC_DIO", bit: 15, minor: 22 },
  { name: "WRITEBACK_CACHE", bit: 16, minor: 23 },
  { name: "NO_OPEN_SUPPORT", bit: 17, minor: 23 },
  { name: "PARALLEL_DIROPS", bit: 18, minor: 25 },
  { name: "HANDLE_KILLPRIV", bit: 19, minor: 26 },
  { name: "POSIX_ACL", bit: 20, minor: 26 },
  { name: "ABORT_ERROR", bit: 21, minor: 27 },
  { name: "MAX_PAGES", bit: 22, minor: 28 },
  { name: "CACHE_SYMLINKS", bit: 23, minor: 28 },
  { name: "NO_OPENDIR_SUPPORT", bit: 24, minor: 29 },
  { name: "EXPLICIT_INVAL_DATA", bit: 25, minor: 30 },
  { name: "MAP_ALIGNMENT", bit: 26, minor: 31 },
  { name: "SUBMOUNTS", bit: 27, minor: 32 },
  { name: "HANDLE_KILLPRIV_V2", bit: 28, minor: 33 },
  { name: "SETXATTR_EXT", bit: 29, minor: 33 },
  { name: "INIT_EXT", bit: 30, minor: 36 },
  { name: "INIT_RESERVED", bit: 31, minor: 36 },
  { name: "SECURITY_CTX", bit: 32, minor: 36 },
  { name: "HAS_INODE_DAX", bit: 33, minor: 36 },
  { name: "CREATE_SUPP_GROUP", bit: 34, minor: 38 },
  { name: "HAS_EXPIRE_ONLY", bit: 35, minor: 38 },
  { name: "DIRECT_IO_ALLOW_MMAP", bit: 36, minor: 39 },
  { name: "PASSTHROUGH", bit: 37, minor: 40 },
  { name: "NO_EXPORT_SUPPORT", bit: 38, minor: 40 },
  { name: "HAS_RESEND", bit: 39, minor: 40 },
  { name: "ALLOW_IDMAP", bit: 40, minor: 40 },
  { name: "OVER_IO_URING", bit: 41, minor: 42 },
  { name: "REQUEST_TIMEOUT", bit: 42, minor: 43 },
];

/** INIT flag bit values by name, as bigint (the flags are 64 bits wide). */
export const InitFlag: Readonly<Record<string, bigint>> = Object.fromEntries(
  INIT_FLAGS.map((f) => [f.name, 1n << BigInt(f.bit)]),
);

/** The names of the set bits of a 64-bit INIT flags value, low bit first. */
export function initFlagNames(flags: bigint): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if ((flags >> BigInt(bit)) & 1n) {
      out.push(INIT_FLAGS.find((f) => f.bit === bit)?.name ?? `BIT_${bit}`);
    }
  }
  return out;
}

/** fuse_open_out.open_flags. */
export const FOPEN = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3, // 7.28
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5, // 7.35
  PARALLEL_DIRECT_WRITES: 1 << 6, // 7.38
  PASSTHROUGH: 1 << 7, // 7.40
} as const;

/** fuse_setattr_in.valid. */
export const FATTR = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10, // 7.23
  KILL_SUIDGID: 1 << 11, // 7.33
} as const;

/** fuse_getattr_in.getattr_flags: `fh` is valid. */
export const FUSE_GETATTR_FH = 1;
/** fuse_fsync_in.fsync_flags: data only. */
export const FUSE_FSYNC_FDATASYNC = 1;
/** fuse_rename2_in.flags: fail if the new name exists. */
export const RENAME_NOREPLACE = 1;

/** fuse_notify_code: sent as the out header's positive `error` with unique 0. */
export const NOTIFY = {
  POLL: 1,
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  STORE: 4,
  RETRIEVE: 5,
  DELETE: 6,
  RESEND: 7, // 7.40
  INC_EPOCH: 8, // 7.44
  PRUNE: 9, // 7.45
} as const;

/** Dirent records are padded to this alignment. */
export const DIRENT_ALIGN = 8;
