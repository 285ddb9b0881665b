/**
 * The struct layouts of the Linux FUSE kernel ABI (`include/uapi/linux/fuse.h`)
 * written as data: every struct the protocol layer reads or writes, field by
 * field, with the offsets the C compiler gives them.
 *
 * The decoder (request.ts) and the encoders (reply.ts) take their offsets and
 * sizes from here through codec.ts, so a layout is written once; the tests
 * check the sizes and a sample of offsets against the C structs, and the
 * golden-byte tests check the codec against commented wire bytes. Which
 * protocol minor these layouts are is said in abi.ts.
 *
 * @module
 */

export type FieldType = "u8" | "u16" | "u32" | "i32" | "u64" | "i64";

export interface Field {
  readonly name: string;
  readonly offset: number;
  readonly type: FieldType;
  /** Array length for `unused[11]`-style fields; 1 otherwise. */
  readonly count: number;
}

export interface StructLayout {
  readonly name: string;
  /** sizeof(struct), padding included. */
  readonly size: number;
  readonly fields: readonly Field[];
  /** Minor version that gave the struct its current size, when that matters. */
  readonly minor?: number;
}

export const FIELD_SIZE: Record<FieldType, number> = {
  u8: 1,
  u16: 2,
  u32: 4,
  i32: 4,
  u64: 8,
  i64: 8,
};

type FieldSpec = readonly [name: string, type: FieldType, count?: number];

/** Lays fields out back to back (the header has no implicit padding: every struct pads by hand). */
function layout(name: string, specs: readonly FieldSpec[], minor?: number): StructLayout {
  const fields: Field[] = [];
  let offset = 0;
  for (const [fname, type, count = 1] of specs) {
    fields.push({ name: fname, offset, type, count });
    offset += FIELD_SIZE[type] * count;
  }
  return minor === undefined
    ? { name, size: offset, fields }
    : { name, size: offset, fields, minor };
}

/** The times of fuse_attr and fuse_setattr_in, then the mode. */
const TIMES_AND_MODE: readonly FieldSpec[] = [
  // uint64_t in fuse.h; the kernel puts signed seconds there (before 1970: negative)
  ["atime", "i64"],
  ["mtime", "i64"],
  ["ctime", "i64"],
  ["atimensec", "u32"],
  ["mtimensec", "u32"],
  ["ctimensec", "u32"],
  ["mode", "u32"],
];

const ATTR_FIELDS: readonly FieldSpec[] = [
  ["ino", "u64"],
  ["size", "u64"],
  ["blocks", "u64"],
  ...TIMES_AND_MODE,
  ["nlink", "u32"],
  ["uid", "u32"],
  ["gid", "u32"],
  ["rdev", "u32"],
  ["blksize", "u32"],
  ["flags", "u32"], // padding before 7.32
];

/** Prefixes every field of a nested struct, e.g. attr.ino. */
function nested(prefix: string, specs: readonly FieldSpec[]): FieldSpec[] {
  return specs.map(([n, t, c]) => [`${prefix}.${n}`, t, c] as const);
}

const ENTRY_OUT_FIELDS: readonly FieldSpec[] = [
  ["nodeid", "u64"],
  ["generation", "u64"],
  ["entry_valid", "u64"],
  ["attr_valid", "u64"],
  ["entry_valid_nsec", "u32"],
  ["attr_valid_nsec", "u32"],
  ...nested("attr", ATTR_FIELDS),
];

const KSTATFS_FIELDS: readonly FieldSpec[] = [
  ["blocks", "u64"],
  ["bfree", "u64"],
  ["bavail", "u64"],
  ["files", "u64"],
  ["ffree", "u64"],
  ["bsize", "u32"],
  ["namelen", "u32"],
  ["frsize", "u32"],
  ["padding", "u32"],
  ["spare", "u32", 6],
];

const DIRENT_FIELDS: readonly FieldSpec[] = [
  ["ino", "u64"],
  ["off", "u64"],
  ["namelen", "u32"],
  ["type", "u32"],
  // char name[] follows, padded to 8 bytes.
];

/** Every struct the protocol layer reads or writes, by its C name without `fuse_`. */
export const STRUCTS = {
  in_header: layout("fuse_in_header", [
    ["len", "u32"],
    ["opcode", "u32"],
    ["unique", "u64"],
    ["nodeid", "u64"],
    ["uid", "u32"],
    ["gid", "u32"],
    ["pid", "u32"],
    ["total_extlen", "u16"], // 8-byte units of extensions at the end (7.38)
    ["padding", "u16"],
  ]),
  out_header: layout("fuse_out_header", [
    ["len", "u32"],
    ["error", "i32"], // 0 or -errno
    ["unique", "u64"],
  ]),
  attr: layout("fuse_attr", ATTR_FIELDS),
  kstatfs: layout("fuse_kstatfs", KSTATFS_FIELDS),
  entry_out: layout("fuse_entry_out", ENTRY_OUT_FIELDS, 9),
  forget_in: layout("fuse_forget_in", [["nlookup", "u64"]]),
  forget_one: layout("fuse_forget_one", [["nodeid", "u64"], ["nlookup", "u64"]]),
  batch_forget_in: layout("fuse_batch_forget_in", [["count", "u32"], ["dummy", "u32"]]),
  getattr_in: layout("fuse_getattr_in", [
    ["getattr_flags", "u32"],
    ["dummy", "u32"],
    ["fh", "u64"],
  ]),
  attr_out: layout("fuse_attr_out", [
    ["attr_valid", "u64"],
    ["attr_valid_nsec", "u32"],
    ["dummy", "u32"],
    ...nested("attr", ATTR_FIELDS),
  ], 9),
  mknod_in: layout("fuse_mknod_in", [
    ["mode", "u32"],
    ["rdev", "u32"],
    ["umask", "u32"],
    ["padding", "u32"],
  ], 12),
  mkdir_in: layout("fuse_mkdir_in", [["mode", "u32"], ["umask", "u32"]]),
  rename_in: layout("fuse_rename_in", [["newdir", "u64"]]),
  rename2_in: layout("fuse_rename2_in", [["newdir", "u64"], ["flags", "u32"], [
    "padding",
    "u32",
  ]]),
  link_in: layout("fuse_link_in", [["oldnodeid", "u64"]]),
  setattr_in: layout("fuse_setattr_in", [
    ["valid", "u32"],
    ["padding", "u32"],
    ["fh", "u64"],
    ["size", "u64"],
    ["lock_owner", "u64"],
    ...TIMES_AND_MODE,
    ["unused4", "u32"],
    ["uid", "u32"],
    ["gid", "u32"],
    ["unused5", "u32"],
  ]),
  open_in: layout("fuse_open_in", [["flags", "u32"], ["open_flags", "u32"]]),
  create_in: layout("fuse_create_in", [
    ["flags", "u32"],
    ["mode", "u32"],
    ["umask", "u32"],
    ["open_flags", "u32"],
  ]),
  open_out: layout("fuse_open_out", [
    ["fh", "u64"],
    ["open_flags", "u32"],
    ["backing_id", "i32"], // padding before 7.40
  ]),
  release_in: layout("fuse_release_in", [
    ["fh", "u64"],
    ["flags", "u32"],
    ["release_flags", "u32"],
    ["lock_owner", "u64"],
  ]),
  flush_in: layout("fuse_flush_in", [
    ["fh", "u64"],
    ["unused", "u32"],
    ["padding", "u32"],
    ["lock_owner", "u64"],
  ]),
  read_in: layout("fuse_read_in", [
    ["fh", "u64"],
    ["offset", "u64"],
    ["size", "u32"],
    ["read_flags", "u32"],
    ["lock_owner", "u64"],
    ["flags", "u32"],
    ["padding", "u32"],
  ]),
  write_in: layout("fuse_write_in", [
    ["fh", "u64"],
    ["offset", "u64"],
    ["size", "u32"],
    ["write_flags", "u32"],
    ["lock_owner", "u64"],
    ["flags", "u32"],
    ["padding", "u32"],
    // the data follows
  ], 9),
  write_out: layout("fuse_write_out", [["size", "u32"], ["padding", "u32"]]),
  statfs_out: layout("fuse_statfs_out", nested("st", KSTATFS_FIELDS), 4),
  fsync_in: layout("fuse_fsync_in", [["fh", "u64"], ["fsync_flags", "u32"], ["padding", "u32"]]),
  setxattr_in: layout("fuse_setxattr_in", [
    ["size", "u32"],
    ["flags", "u32"],
    ["setxattr_flags", "u32"], // only with SETXATTR_EXT (7.33); 8 bytes otherwise
    ["padding", "u32"],
  ]),
  getxattr_in: layout("fuse_getxattr_in", [["size", "u32"], ["padding", "u32"]]),
  getxattr_out: layout("fuse_getxattr_out", [["size", "u32"], ["padding", "u32"]]),
  lk_in: layout("fuse_lk_in", [
    ["fh", "u64"],
    ["owner", "u64"],
    ["lk.start", "u64"],
    ["lk.end", "u64"],
    ["lk.type", "u32"],
    ["lk.pid", "u32"],
    ["lk_flags", "u32"],
    ["padding", "u32"],
  ]),
  lk_out: layout("fuse_lk_out", [
    ["lk.start", "u64"],
    ["lk.end", "u64"],
    ["lk.type", "u32"],
    ["lk.pid", "u32"],
  ]),
  access_in: layout("fuse_access_in", [["mask", "u32"], ["padding", "u32"]]),
  init_in: layout("fuse_init_in", [
    ["major", "u32"],
    ["minor", "u32"],
    ["max_readahead", "u32"],
    ["flags", "u32"],
    ["flags2", "u32"], // 7.36; the struct was 16 bytes before
    ["unused", "u32", 11],
  ], 36),
  init_out: layout("fuse_init_out", [
    ["major", "u32"],
    ["minor", "u32"],
    ["max_readahead", "u32"],
    ["flags", "u32"],
    ["max_background", "u16"],
    ["congestion_threshold", "u16"],
    ["max_write", "u32"],
    ["time_gran", "u32"],
    ["max_pages", "u16"], // 7.28
    ["map_alignment", "u16"], // 7.31
    ["flags2", "u32"], // 7.36
    ["max_stack_depth", "u32"], // 7.40 (unused before)
    ["request_timeout", "u16"], // 7.43 (unused before)
    ["unused", "u16", 11],
  ], 23),
  interrupt_in: layout("fuse_interrupt_in", [["unique", "u64"]]),
  bmap_in: layout("fuse_bmap_in", [["block", "u64"], ["blocksize", "u32"], ["padding", "u32"]]),
  bmap_out: layout("fuse_bmap_out", [["block", "u64"]]),
  ioctl_in: layout("fuse_ioctl_in", [
    ["fh", "u64"],
    ["flags", "u32"],
    ["cmd", "u32"],
    ["arg", "u64"],
    ["in_size", "u32"],
    ["out_size", "u32"],
  ]),
  poll_in: layout("fuse_poll_in", [
    ["fh", "u64"],
    ["kh", "u64"],
    ["flags", "u32"],
    ["events", "u32"],
  ]),
  fallocate_in: layout("fuse_fallocate_in", [
    ["fh", "u64"],
    ["offset", "u64"],
    ["length", "u64"],
    ["mode", "u32"],
    ["padding", "u32"],
  ]),
  lseek_in: layout("fuse_lseek_in", [
    ["fh", "u64"],
    ["offset", "u64"],
    ["whence", "u32"],
    ["padding", "u32"],
  ]),
  lseek_out: layout("fuse_lseek_out", [["offset", "u64"]]),
  copy_file_range_in: layout("fuse_copy_file_range_in", [
    ["fh_in", "u64"],
    ["off_in", "u64"],
    ["nodeid_out", "u64"],
    ["fh_out", "u64"],
    ["off_out", "u64"],
    ["len", "u64"],
    ["flags", "u64"],
  ]),
  setupmapping_in: layout("fuse_setupmapping_in", [
    ["fh", "u64"],
    ["foffset", "u64"],
    ["len", "u64"],
    ["flags", "u64"],
    ["moffset", "u64"],
  ]),
  removemapping_in: layout("fuse_removemapping_in", [["count", "u32"]]),
  syncfs_in: layout("fuse_syncfs_in", [["padding", "u64"]]),
  statx_in: layout("fuse_statx_in", [
    ["getattr_flags", "u32"],
    ["reserved", "u32"],
    ["fh", "u64"],
    ["sx_flags", "u32"],
    ["sx_mask", "u32"],
  ], 39),
  notify_retrieve_in: layout("fuse_notify_retrieve_in", [
    ["dummy1", "u64"],
    ["offset", "u64"],
    ["size", "u32"],
    ["dummy2", "u32"],
    ["dummy3", "u64"],
    ["dummy4", "u64"],
  ]),
  notify_inval_inode_out: layout("fuse_notify_inval_inode_out", [
    ["ino", "u64"],
    ["off", "i64"], // < 0: attributes only
    ["len", "i64"], // 0: to the end
  ]),
  notify_inval_entry_out: layout("fuse_notify_inval_entry_out", [
    ["parent", "u64"],
    ["namelen", "u32"],
    ["flags", "u32"], // FUSE_EXPIRE_ONLY (7.38)
    // the name and a NUL follow
  ]),
  dirent: layout("fuse_dirent", DIRENT_FIELDS),
  direntplus: layout("fuse_direntplus", [
    ...nested("entry_out", ENTRY_OUT_FIELDS),
    ...nested("dirent", DIRENT_FIELDS),
  ]),
} as const satisfies Record<string, StructLayout>;

export type StructName = keyof typeof STRUCTS;

/** sizeof(struct). */
export function sizeOf(struct: StructName): number {
  return STRUCTS[struct].size;
}
