import assert from "node:assert/strict";
import {
  FATTR,
  FOPEN,
  INIT_FLAGS,
  InitFlag,
  initFlagNames,
  NOTIFY,
  Op,
  OPCODE_BY_CODE,
  OPCODES,
  opName,
} from "./abi.ts";
import { offsets } from "./codec.ts";
import { FIELD_SIZE, sizeOf, type StructName, STRUCTS } from "./structs.ts";

/** sizeof() of each struct, as computed from include/uapi/linux/fuse.h (7.45). */
const C_SIZES: Partial<Record<StructName, number>> = {
  in_header: 40,
  out_header: 16,
  attr: 88,
  kstatfs: 80,
  entry_out: 128,
  forget_in: 8,
  forget_one: 16,
  batch_forget_in: 8,
  getattr_in: 16,
  attr_out: 104,
  mknod_in: 16,
  mkdir_in: 8,
  rename_in: 8,
  rename2_in: 16,
  link_in: 8,
  setattr_in: 88,
  open_in: 8,
  create_in: 16,
  open_out: 16,
  release_in: 24,
  flush_in: 24,
  read_in: 40,
  write_in: 40,
  write_out: 8,
  statfs_out: 80,
  fsync_in: 16,
  setxattr_in: 16,
  getxattr_in: 8,
  getxattr_out: 8,
  lk_in: 48,
  lk_out: 24,
  access_in: 8,
  init_in: 64,
  init_out: 64,
  interrupt_in: 8,
  bmap_in: 16,
  bmap_out: 8,
  ioctl_in: 32,
  poll_in: 24,
  fallocate_in: 32,
  lseek_in: 24,
  lseek_out: 8,
  copy_file_range_in: 56,
  setupmapping_in: 40,
  syncfs_in: 8,
  statx_in: 24,
  notify_retrieve_in: 40,
  notify_inval_inode_out: 24,
  notify_inval_entry_out: 16,
  dirent: 24,
  direntplus: 152,
};

Deno.test("STRUCTS sizes match the C structs of fuse.h", () => {
  for (const [name, size] of Object.entries(C_SIZES)) {
    assert.equal(sizeOf(name as StructName), size, `sizeof fuse_${name}`);
  }
});

Deno.test("STRUCTS fields are naturally aligned and pad every struct to 8 bytes", () => {
  for (const [name, s] of Object.entries(STRUCTS)) {
    for (const f of s.fields) {
      const width = FIELD_SIZE[f.type];
      assert.equal(f.offset % width, 0, `${name}.${f.name} is misaligned`);
    }
    if (name !== "removemapping_in") assert.equal(s.size % 8, 0, `${name} is not 8-byte padded`);
  }
});

Deno.test("offsets() returns the C offsets of the fields the codec relies on", () => {
  const cases: [StructName, string, number][] = [
    ["in_header", "unique", 8],
    ["in_header", "nodeid", 16],
    ["in_header", "pid", 32],
    ["in_header", "total_extlen", 36],
    ["setattr_in", "atime", 32],
    ["setattr_in", "atimensec", 56],
    ["setattr_in", "mode", 68],
    ["setattr_in", "uid", 76],
    ["setattr_in", "gid", 80],
    ["read_in", "size", 16],
    ["read_in", "flags", 32],
    ["init_in", "flags2", 16],
    ["init_out", "max_background", 16],
    ["init_out", "max_write", 20],
    ["init_out", "max_pages", 28],
    ["init_out", "flags2", 32],
    ["init_out", "request_timeout", 40],
    ["entry_out", "attr.ino", 40],
    ["entry_out", "attr.mode", 100],
    ["attr_out", "attr.ino", 16],
    ["attr", "blksize", 80],
    ["kstatfs", "frsize", 48],
    ["open_out", "open_flags", 8],
    ["direntplus", "dirent.ino", 128],
    ["direntplus", "dirent.namelen", 144],
  ];
  for (const [s, f, off] of cases) assert.equal(offsets(s, [f])[f], off, `${s}.${f}`);
  assert.equal(offsets("entry_out", ["attr"]).attr, 40, "a nested struct gives its start");
  assert.throws(() => offsets("read_in", ["nope"]), /Unknown field "nope" in struct "read_in"/);
});

Deno.test("OPCODES has unique numbers and names that agree with Op", () => {
  const codes = new Set(OPCODES.map((o) => o.code));
  assert.equal(codes.size, OPCODES.length);
  assert.equal(Object.keys(Op).length, OPCODES.length);
  for (const [name, code] of Object.entries(Op)) {
    assert.equal(OPCODE_BY_CODE.get(code)?.name, name);
    assert.equal(opName(code), name);
  }
  assert.equal(opName(9999), "OPCODE_9999");
});

Deno.test("OPCODES marks exactly FORGET, BATCH_FORGET, INTERRUPT and NOTIFY_REPLY as unanswered", () => {
  const silent = OPCODES.filter((o) => o.noReply).map((o) => o.name).sort();
  assert.deepEqual(silent, ["BATCH_FORGET", "FORGET", "INTERRUPT", "NOTIFY_REPLY"]);
});

Deno.test("OPCODES gives the body size the kernel sends: the struct's, or its compat size", () => {
  const size = Object.fromEntries(OPCODES.map((o) => [o.name, o.bodySize]));
  assert.equal(size.LOOKUP, 0);
  assert.equal(size.READ, 40);
  assert.equal(size.WRITE, 40);
  assert.equal(size.SETATTR, 88);
  assert.equal(size.RENAME2, 16);
  assert.equal(size.INIT, 16, "init_in before 7.36");
  assert.equal(size.SETXATTR, 8, "setxattr_in without SETXATTR_EXT");
});

Deno.test("OPCODES records the names each request carries", () => {
  const names = Object.fromEntries(OPCODES.map((o) => [o.name, o.names]));
  assert.equal(names.LOOKUP, 1);
  assert.equal(names.RENAME, 2);
  assert.equal(names.RENAME2, 2);
  assert.equal(names.SYMLINK, 2);
  assert.equal(names.CREATE, 1);
  assert.equal(names.READ, 0);
  const newer = OPCODES.filter((o) => o.minor > 38).map((o) => o.name);
  assert.deepEqual(newer, ["STATX", "COPY_FILE_RANGE_64"]);
});

Deno.test("INIT_FLAGS bits are unique and InitFlag values are 1 << bit", () => {
  const bits = new Set(INIT_FLAGS.map((f) => f.bit));
  assert.equal(bits.size, INIT_FLAGS.length);
  assert.equal(InitFlag.ASYNC_READ, 1n);
  assert.equal(InitFlag.PARALLEL_DIROPS, 1n << 18n);
  assert.equal(InitFlag.MAX_PAGES, 1n << 22n);
  assert.equal(InitFlag.INIT_EXT, 1n << 30n);
  assert.equal(InitFlag.SECURITY_CTX, 1n << 32n);
  assert.deepEqual(initFlagNames((1n << 22n) | 1n | (1n << 63n)), [
    "ASYNC_READ",
    "MAX_PAGES",
    "BIT_63",
  ]);
});

/**
 * Cross-checks the tables against the uapi header of the build machine, when
 * it is installed: every opcode, INIT flag, FOPEN and FATTR bit it defines
 * must be in our tables with the same value.
 */
Deno.test("abi tables agree with /usr/include/linux/fuse.h", async (t) => {
  let header: string;
  try {
    header = await Deno.readTextFile("/usr/include/linux/fuse.h");
  } catch {
    await t.step({ name: "header not installed", ignore: true, fn: () => {} });
    return;
  }
  const enumBody = /enum fuse_opcode \{([\s\S]*?)\};/.exec(header)![1]!;
  let checked = 0;
  for (const m of enumBody.matchAll(/FUSE_([A-Z0-9_]+)\s*=\s*(\d+)/g)) {
    const [, name, value] = m;
    if (name!.endsWith("_BSWAP_RESERVED")) continue;
    assert.equal(Op[name as keyof typeof Op], Number(value), `opcode FUSE_${name}`);
    checked++;
  }
  assert.ok(checked >= 45);
  const bit = (expr: string) => {
    const m = /\(1(?:ULL)?\s*<<\s*(\d+)\)/.exec(expr);
    return m ? Number(m[1]) : null;
  };
  for (const m of header.matchAll(/#define FUSE_([A-Z0-9_]+)\s+(\(1(?:ULL)? << \d+\))/g)) {
    const flag = INIT_FLAGS.find((f) => f.name === m[1]);
    if (flag) assert.equal(flag.bit, bit(m[2]!), `INIT flag ${m[1]}`);
  }
  const initSection = header.slice(
    header.indexOf("#define FUSE_ASYNC_READ"),
    header.indexOf("CUSE INIT request/reply flags"),
  );
  const defined = [...initSection.matchAll(/#define FUSE_([A-Z0-9_]+)\s/g)].map((m) => m[1]);
  for (const name of defined) {
    assert.ok(INIT_FLAGS.some((f) => f.name === name), `INIT flag FUSE_${name} missing`);
  }
  const notifyBody = /enum fuse_notify_code \{([\s\S]*?)\};/.exec(header)![1]!;
  for (const m of notifyBody.matchAll(/FUSE_NOTIFY_([A-Z_]+)\s*=\s*(\d+)/g)) {
    assert.equal(NOTIFY[m[1] as keyof typeof NOTIFY], Number(m[2]), `FUSE_NOTIFY_${m[1]}`);
  }
  for (const m of header.matchAll(/#define FOPEN_([A-Z_]+)\s+(\(1 << \d+\))/g)) {
    assert.equal(FOPEN[m[1] as keyof typeof FOPEN], 1 << bit(m[2]!)!, `FOPEN_${m[1]}`);
  }
  for (const m of header.matchAll(/#define FATTR_([A-Z_]+)\s+(\(1 << \d+\))/g)) {
    assert.equal(FATTR[m[1] as keyof typeof FATTR], 1 << bit(m[2]!)!, `FATTR_${m[1]}`);
  }
});
