import assert from "node:assert/strict";
import fc from "fast-check";
import { DecodeError, decodeRequest, type Request } from "./request.ts";
import { Op } from "./abi.ts";

/** Bytes from rows of hex (spaces ignored); each row is one field or two, commented. */
function hex(...rows: string[]): Uint8Array<ArrayBuffer> {
  const s = rows.join("").replace(/\s+/g, "");
  if (s.length % 2) throw new Error(`Odd hex length in golden packet: ${s.length}`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function decodeOk(bytes: Uint8Array): Request {
  const r = decodeRequest(bytes);
  if (r instanceof DecodeError) throw new Error(`Unexpected DecodeError: ${r.kind}: ${r.message}`);
  return r;
}

function decodeErr(bytes: Uint8Array, length?: number): DecodeError {
  const r = decodeRequest(bytes, length);
  assert.ok(r instanceof DecodeError, `expected a DecodeError, got ${JSON.stringify(r)}`);
  return r;
}

/** Every golden packet below uses uid 1000, gid 1001, pid 4242 in the header. */
const IDS = { uid: 1000, gid: 1001, pid: 4242 };
const IDS_ROW = "e8030000 e9030000"; // uid 1000, gid 1001
const PID_ROW = "92100000 0000 0000"; // pid 4242, total_extlen 0, padding

const LOOKUP = hex(
  "32000000 01000000", // len 50, opcode 1 (LOOKUP)
  "0400000000000000", // unique 4
  "0100000000000000", // nodeid 1
  IDS_ROW,
  PID_ROW,
  "68656c6c6f2e747874 00", // "hello.txt\0"
);

Deno.test("decodeRequest() decodes a LOOKUP header and name", () => {
  assert.deepEqual(decodeOk(LOOKUP), {
    op: "LOOKUP",
    opcode: 1,
    unique: 4,
    nodeid: 1,
    ...IDS,
    name: "hello.txt",
  });
});

Deno.test("decodeRequest() decodes UNLINK, RMDIR and REMOVEXATTR names", () => {
  const unlink = hex(
    "2d000000 0a000000", // len 45, opcode 10 (UNLINK)
    "0600000000000000", // unique 6
    "0200000000000000", // nodeid 2
    IDS_ROW,
    PID_ROW,
    "676f6e65 00", // "gone\0"
  );
  assert.deepEqual(decodeOk(unlink), {
    op: "UNLINK",
    opcode: 10,
    unique: 6,
    nodeid: 2,
    ...IDS,
    name: "gone",
  });
  const rmdir = hex(
    "2a000000 0b000000", // len 42, opcode 11 (RMDIR)
    "0800000000000000", // unique 8
    "0100000000000000", // nodeid 1
    IDS_ROW,
    PID_ROW,
    "64 00", // "d\0"
  );
  assert.deepEqual(decodeOk(rmdir), {
    op: "RMDIR",
    opcode: 11,
    unique: 8,
    nodeid: 1,
    ...IDS,
    name: "d",
  });
  const removexattr = hex(
    "2f000000 18000000", // len 47, opcode 24 (REMOVEXATTR)
    "0a00000000000000", // unique 10
    "0300000000000000", // nodeid 3
    IDS_ROW,
    PID_ROW,
    "757365722e61 00", // "user.a\0"
  );
  assert.deepEqual(decodeOk(removexattr), {
    op: "REMOVEXATTR",
    opcode: 24,
    unique: 10,
    nodeid: 3,
    ...IDS,
    name: "user.a",
  });
});

Deno.test("decodeRequest() decodes FORGET", () => {
  const b = hex(
    "30000000 02000000", // len 48, opcode 2 (FORGET)
    "0c00000000000000", // unique 12
    "0500000000000000", // nodeid 5
    IDS_ROW,
    PID_ROW,
    "0300000000000000", // nlookup 3
  );
  assert.deepEqual(decodeOk(b), {
    op: "FORGET",
    opcode: 2,
    unique: 12,
    nodeid: 5,
    ...IDS,
    nlookup: 3,
  });
});

const BATCH_FORGET = hex(
  "50000000 2a000000", // len 80, opcode 42 (BATCH_FORGET)
  "0e00000000000000", // unique 14
  "0000000000000000", // nodeid 0
  IDS_ROW,
  PID_ROW,
  "02000000 00000000", // count 2, dummy
  "0700000000000000", // [0] nodeid 7
  "0100000000000000", // [0] nlookup 1
  "0000000001000000", // [1] nodeid 2^32
  "0a00000000000000", // [1] nlookup 10
);

Deno.test("decodeRequest() decodes BATCH_FORGET with its forget_one entries", () => {
  assert.deepEqual(decodeOk(BATCH_FORGET), {
    op: "BATCH_FORGET",
    opcode: 42,
    unique: 14,
    nodeid: 0,
    ...IDS,
    forgets: [{ nodeid: 7, nlookup: 1 }, { nodeid: 2 ** 32, nlookup: 10 }],
  });
});

Deno.test("decodeRequest() decodes GETATTR with and without a file handle", () => {
  const withFh = hex(
    "38000000 03000000", // len 56, opcode 3 (GETATTR)
    "1000000000000000", // unique 16
    "0200000000000000", // nodeid 2
    IDS_ROW,
    PID_ROW,
    "01000000 00000000", // getattr_flags FUSE_GETATTR_FH, dummy
    "2a00000000000000", // fh 42
  );
  assert.deepEqual(decodeOk(withFh), {
    op: "GETATTR",
    opcode: 3,
    unique: 16,
    nodeid: 2,
    ...IDS,
    getattrFlags: 1,
    fh: 42,
  });
  const noFh = withFh.slice();
  noFh[40] = 0; // getattr_flags 0: fh is not valid
  const r = decodeOk(noFh);
  assert.equal(r.op, "GETATTR");
  assert.equal(r.op === "GETATTR" && r.fh, undefined);
});

Deno.test("decodeRequest() decodes every SETATTR field", () => {
  const b = hex(
    "80000000 04000000", // len 128, opcode 4 (SETATTR)
    "1200000000000000", // unique 18
    "0300000000000000", // nodeid 3
    IDS_ROW,
    PID_ROW,
    "7f000000 00000000", // valid MODE|UID|GID|SIZE|ATIME|MTIME|FH, padding
    "0700000000000000", // fh 7
    "0000000001000000", // size 4 GiB
    "0000000000000000", // lock_owner
    "00f1536500000000", // atime 1700000000
    "01f1536500000000", // mtime 1700000001
    "ffffffffffffffff", // ctime -1
    "0065cd1d 00000000", // atimensec 500000000, mtimensec 0
    "00000000 80810000", // ctimensec 0, mode 0100600
    "00000000 d2040000", // unused4, uid 1234
    "2e160000 00000000", // gid 5678, unused5
  );
  assert.deepEqual(decodeOk(b), {
    op: "SETATTR",
    opcode: 4,
    unique: 18,
    nodeid: 3,
    ...IDS,
    valid: 0x7f,
    fh: 7,
    size: 4 * 2 ** 30,
    atime: 1700000000,
    mtime: 1700000001,
    ctime: -1,
    atimensec: 500000000,
    mtimensec: 0,
    ctimensec: 0,
    mode: 0o100600,
    newUid: 1234,
    newGid: 5678,
  });
});

Deno.test("decodeRequest() decodes header-only READLINK, STATFS and DESTROY", () => {
  const statfs = hex(
    "28000000 11000000", // len 40, opcode 17 (STATFS)
    "1400000000000000", // unique 20
    "0100000000000000", // nodeid 1
    IDS_ROW,
    PID_ROW,
  );
  assert.deepEqual(decodeOk(statfs), {
    op: "STATFS",
    opcode: 17,
    unique: 20,
    nodeid: 1,
    ...IDS,
  });
  for (const [code, op] of [[5, "READLINK"], [38, "DESTROY"]] as const) {
    const b = statfs.slice();
    b[4] = code; // opcode
    assert.equal(decodeOk(b).op, op);
  }
});

Deno.test("decodeRequest() decodes SYMLINK's name and target", () => {
  const b = hex(
    "32000000 06000000", // len 50, opcode 6 (SYMLINK)
    "1600000000000000", // unique 22
    "0100000000000000", // nodeid 1 (parent)
    IDS_ROW,
    PID_ROW,
    "6c6e 00", // "ln\0"
    "746172676574 00", // "target\0"
  );
  assert.deepEqual(decodeOk(b), {
    op: "SYMLINK",
    opcode: 6,
    unique: 22,
    nodeid: 1,
    ...IDS,
    name: "ln",
    target: "target",
  });
});

Deno.test("decodeRequest() decodes MKNOD and MKDIR", () => {
  const mknod = hex(
    "3a000000 08000000", // len 58, opcode 8 (MKNOD)
    "1800000000000000", // unique 24
    "0100000000000000", // nodeid 1
    IDS_ROW,
    PID_ROW,
    "a4810000 00000000", // mode 0100644, rdev 0
    "12000000 00000000", // umask 022, padding
    "66 00", // "f\0"
  );
  assert.deepEqual(decodeOk(mknod), {
    op: "MKNOD",
    opcode: 8,
    unique: 24,
    nodeid: 1,
    ...IDS,
    mode: 0o100644,
    rdev: 0,
    umask: 0o22,
    name: "f",
  });
  const mkdir = hex(
    "34000000 09000000", // len 52, opcode 9 (MKDIR)
    "1a00000000000000", // unique 26
    "0100000000000000", // nodeid 1
    IDS_ROW,
    PID_ROW,
    "ed010000 12000000", // mode 0755, umask 022
    "646972 00", // "dir\0"
  );
  assert.deepEqual(decodeOk(mkdir), {
    op: "MKDIR",
    opcode: 9,
    unique: 26,
    nodeid: 1,
    ...IDS,
    mode: 0o755,
    umask: 0o22,
    name: "dir",
  });
});

Deno.test("decodeRequest() decodes RENAME and RENAME2", () => {
  const rename = hex(
    "35000000 0c000000", // len 53, opcode 12 (RENAME)
    "1c00000000000000", // unique 28
    "0100000000000000", // nodeid 1 (old parent)
    IDS_ROW,
    PID_ROW,
    "0900000000000000", // newdir 9
    "61 00", // "a\0"
    "6262 00", // "bb\0"
  );
  assert.deepEqual(decodeOk(rename), {
    op: "RENAME",
    opcode: 12,
    unique: 28,
    nodeid: 1,
    ...IDS,
    newdir: 9,
    flags: 0,
    name: "a",
    newName: "bb",
  });
  const rename2 = hex(
    "3c000000 2d000000", // len 60, opcode 45 (RENAME2)
    "1e00000000000000", // unique 30
    "0100000000000000", // nodeid 1
    IDS_ROW,
    PID_ROW,
    "0100000000000000", // newdir 1
    "01000000 00000000", // flags RENAME_NOREPLACE, padding
    "61 00", // "a\0"
    "62 00", // "b\0"
  );
  assert.deepEqual(decodeOk(rename2), {
    op: "RENAME2",
    opcode: 45,
    unique: 30,
    nodeid: 1,
    ...IDS,
    newdir: 1,
    flags: 1,
    name: "a",
    newName: "b",
  });
});

Deno.test("decodeRequest() decodes LINK", () => {
  const b = hex(
    "32000000 0d000000", // len 50, opcode 13 (LINK)
    "2000000000000000", // unique 32
    "0100000000000000", // nodeid 1 (new parent)
    IDS_ROW,
    PID_ROW,
    "0500000000000000", // oldnodeid 5
    "6c 00", // "l\0"
  );
  assert.deepEqual(decodeOk(b), {
    op: "LINK",
    opcode: 13,
    unique: 32,
    nodeid: 1,
    ...IDS,
    oldnodeid: 5,
    name: "l",
  });
});

const OPEN = hex(
  "30000000 0e000000", // len 48, opcode 14 (OPEN)
  "2200000000000000", // unique 34
  "0500000000000000", // nodeid 5
  IDS_ROW,
  PID_ROW,
  "01820000 00000000", // flags O_WRONLY|O_TRUNC|O_LARGEFILE (0x8201), open_flags 0
);

Deno.test("decodeRequest() decodes OPEN and OPENDIR", () => {
  assert.deepEqual(decodeOk(OPEN), {
    op: "OPEN",
    opcode: 14,
    unique: 34,
    nodeid: 5,
    ...IDS,
    flags: 0x8201,
    openFlags: 0,
  });
  const opendir = OPEN.slice();
  opendir[4] = Op.OPENDIR; // same fuse_open_in
  assert.equal(decodeOk(opendir).op, "OPENDIR");
});

const READ = hex(
  "50000000 0f000000", // len 80, opcode 15 (READ)
  "2400000000000000", // unique 36
  "0500000000000000", // nodeid 5
  IDS_ROW,
  PID_ROW,
  "0300000000000000", // fh 3
  "0010000001000000", // offset 2^32 + 4096
  "00000200 02000000", // size 128 KiB, read_flags READ_LOCKOWNER
  "efbeadde00000000", // lock_owner
  "00800000 00000000", // flags O_LARGEFILE, padding
);

Deno.test("decodeRequest() decodes READ, READDIR and READDIRPLUS", () => {
  assert.deepEqual(decodeOk(READ), {
    op: "READ",
    opcode: 15,
    unique: 36,
    nodeid: 5,
    ...IDS,
    fh: 3,
    offset: 2 ** 32 + 4096,
    size: 131072,
    readFlags: 2,
    flags: 0x8000,
  });
  for (const [code, op] of [[Op.READDIR, "READDIR"], [Op.READDIRPLUS, "READDIRPLUS"]] as const) {
    const b = READ.slice();
    b[4] = code; // same fuse_read_in
    const r = decodeOk(b);
    assert.equal(r.op, op);
    assert.equal("offset" in r && r.offset, 2 ** 32 + 4096);
  }
});

const WRITE = hex(
  "55000000 10000000", // len 85, opcode 16 (WRITE)
  "2600000000000000", // unique 38
  "0500000000000000", // nodeid 5
  IDS_ROW,
  PID_ROW,
  "0900000000000000", // fh 9
  "0000100000000000", // offset 1 MiB
  "05000000 01000000", // size 5, write_flags WRITE_CACHE
  "0000000000000000", // lock_owner
  "01800000 00000000", // flags O_WRONLY|O_LARGEFILE, padding
  "68656c6c6f", // data "hello"
);

Deno.test("decodeRequest() decodes WRITE with its data as a view of the input", () => {
  const r = decodeOk(WRITE);
  assert.equal(r.op, "WRITE");
  if (r.op !== "WRITE") return;
  assert.deepEqual({ ...r, data: undefined }, {
    op: "WRITE",
    opcode: 16,
    unique: 38,
    nodeid: 5,
    ...IDS,
    fh: 9,
    offset: 1024 * 1024,
    size: 5,
    writeFlags: 1,
    flags: 0x8001,
    data: undefined,
  });
  assert.equal(new TextDecoder().decode(r.data), "hello");
  // No copy: the data shares the input's memory.
  assert.equal(r.data.buffer, WRITE.buffer);
  assert.equal(r.data.byteOffset, 80);
});

const RELEASE = hex(
  "40000000 12000000", // len 64, opcode 18 (RELEASE)
  "2800000000000000", // unique 40
  "0500000000000000", // nodeid 5
  IDS_ROW,
  PID_ROW,
  "0900000000000000", // fh 9
  "02800000 01000000", // flags O_RDWR|O_LARGEFILE, release_flags RELEASE_FLUSH
  "0000000000000000", // lock_owner
);

Deno.test("decodeRequest() decodes RELEASE and RELEASEDIR", () => {
  assert.deepEqual(decodeOk(RELEASE), {
    op: "RELEASE",
    opcode: 18,
    unique: 40,
    nodeid: 5,
    ...IDS,
    fh: 9,
    flags: 0x8002,
    releaseFlags: 1,
  });
  const rd = RELEASE.slice();
  rd[4] = Op.RELEASEDIR;
  assert.equal(decodeOk(rd).op, "RELEASEDIR");
});

Deno.test("decodeRequest() decodes FSYNC, FSYNCDIR and FLUSH", () => {
  const fsync = hex(
    "38000000 14000000", // len 56, opcode 20 (FSYNC)
    "2a00000000000000", // unique 42
    "0500000000000000", // nodeid 5
    IDS_ROW,
    PID_ROW,
    "0900000000000000", // fh 9
    "01000000 00000000", // fsync_flags FDATASYNC, padding
  );
  assert.deepEqual(decodeOk(fsync), {
    op: "FSYNC",
    opcode: 20,
    unique: 42,
    nodeid: 5,
    ...IDS,
    fh: 9,
    fsyncFlags: 1,
  });
  const fsyncdir = fsync.slice();
  fsyncdir[4] = Op.FSYNCDIR;
  assert.equal(decodeOk(fsyncdir).op, "FSYNCDIR");
  const flush = hex(
    "40000000 19000000", // len 64, opcode 25 (FLUSH)
    "2c00000000000000", // unique 44
    "0500000000000000", // nodeid 5
    IDS_ROW,
    PID_ROW,
    "0900000000000000", // fh 9
    "00000000 00000000", // unused, padding
    "1122334455667700", // lock_owner
  );
  assert.deepEqual(decodeOk(flush), {
    op: "FLUSH",
    opcode: 25,
    unique: 44,
    nodeid: 5,
    ...IDS,
    fh: 9,
  });
});

Deno.test("decodeRequest() decodes a 64-byte INIT with flags2", () => {
  const b = hex(
    "68000000 1a000000", // len 104, opcode 26 (INIT)
    "0200000000000000", // unique 2
    "0000000000000000", // nodeid 0
    "00000000 00000000", // uid 0, gid 0
    "00000000 0000 0000", // pid 0, total_extlen 0, padding
    "07000000 2d000000", // major 7, minor 45
    "00000200 01004040", // max_readahead 128 KiB, flags ASYNC_READ|MAX_PAGES|INIT_EXT
    "09000000", // flags2: SECURITY_CTX (bit 32) | HAS_EXPIRE_ONLY (bit 35)
    "00".repeat(44), // unused[11]
  );
  assert.deepEqual(decodeOk(b), {
    op: "INIT",
    opcode: 26,
    unique: 2,
    nodeid: 0,
    uid: 0,
    gid: 0,
    pid: 0,
    major: 7,
    minor: 45,
    maxReadahead: 131072,
    flags: 0x40400001n | (9n << 32n),
  });
});

Deno.test("decodeRequest() decodes a 16-byte INIT and ignores flags2 it does not carry", () => {
  const b = hex(
    "38000000 1a000000", // len 56, opcode 26 (INIT)
    "0200000000000000", // unique 2
    "0000000000000000", // nodeid 0
    "00000000 00000000", // uid 0, gid 0
    "00000000 0000 0000", // pid 0, total_extlen 0, padding
    "07000000 17000000", // major 7, minor 23
    "00000200 01000040", // max_readahead 128 KiB, flags ASYNC_READ|INIT_EXT
  );
  const r = decodeOk(b);
  assert.equal(r.op, "INIT");
  if (r.op !== "INIT") return;
  assert.equal(r.minor, 23);
  assert.equal(r.flags, 0x40000001n);
});

Deno.test("decodeRequest() decodes CREATE", () => {
  const b = hex(
    "40000000 23000000", // len 64, opcode 35 (CREATE)
    "2e00000000000000", // unique 46
    "0100000000000000", // nodeid 1
    IDS_ROW,
    PID_ROW,
    "41820000 a4810000", // flags O_WRONLY|O_CREAT|O_TRUNC|O_LARGEFILE, mode 0100644
    "12000000 00000000", // umask 022, open_flags 0
    "6e65772e747874 00", // "new.txt\0"
  );
  assert.deepEqual(decodeOk(b), {
    op: "CREATE",
    opcode: 35,
    unique: 46,
    nodeid: 1,
    ...IDS,
    flags: 0x8241,
    mode: 0o100644,
    umask: 0o22,
    openFlags: 0,
    name: "new.txt",
  });
});

Deno.test("decodeRequest() decodes INTERRUPT and ACCESS", () => {
  const interrupt = hex(
    "30000000 24000000", // len 48, opcode 36 (INTERRUPT)
    "2500000000000000", // unique 37 (victim | 1)
    "0000000000000000", // nodeid 0
    IDS_ROW,
    PID_ROW,
    "2400000000000000", // unique of the interrupted request: 36
  );
  assert.deepEqual(decodeOk(interrupt), {
    op: "INTERRUPT",
    opcode: 36,
    unique: 37,
    nodeid: 0,
    ...IDS,
    target: 36,
  });
  const access = hex(
    "30000000 22000000", // len 48, opcode 34 (ACCESS)
    "3000000000000000", // unique 48
    "0500000000000000", // nodeid 5
    IDS_ROW,
    PID_ROW,
    "04000000 00000000", // mask R_OK, padding
  );
  assert.deepEqual(decodeOk(access), {
    op: "ACCESS",
    opcode: 34,
    unique: 48,
    nodeid: 5,
    ...IDS,
    mask: 4,
  });
});

Deno.test("decodeRequest() decodes GETXATTR and LISTXATTR", () => {
  const get = hex(
    "37000000 16000000", // len 55, opcode 22 (GETXATTR)
    "3200000000000000", // unique 50
    "0500000000000000", // nodeid 5
    IDS_ROW,
    PID_ROW,
    "00010000 00000000", // size 256, padding
    "757365722e61 00", // "user.a\0"
  );
  assert.deepEqual(decodeOk(get), {
    op: "GETXATTR",
    opcode: 22,
    unique: 50,
    nodeid: 5,
    ...IDS,
    size: 256,
    name: "user.a",
  });
  const list = hex(
    "30000000 17000000", // len 48, opcode 23 (LISTXATTR)
    "3400000000000000", // unique 52
    "0500000000000000", // nodeid 5
    IDS_ROW,
    PID_ROW,
    "00000000 00000000", // size 0 (asks for the needed size), padding
  );
  assert.deepEqual(decodeOk(list), {
    op: "LISTXATTR",
    opcode: 23,
    unique: 52,
    nodeid: 5,
    ...IDS,
    size: 0,
  });
});

Deno.test("decodeRequest() keeps the body of opcodes it does not interpret", () => {
  const b = hex(
    "40000000 2e000000", // len 64, opcode 46 (LSEEK)
    "3600000000000000", // unique 54
    "0500000000000000", // nodeid 5
    IDS_ROW,
    PID_ROW,
    "0900000000000000", // fh 9
    "0000000000000000", // offset 0
    "03000000 00000000", // whence SEEK_DATA, padding
  );
  const r = decodeOk(b);
  assert.equal(r.op, "LSEEK");
  assert.equal(r.unique, 54);
  assert.ok("body" in r && r.body.byteLength === 24 && r.body[16] === 3);
});

Deno.test("decodeRequest() cuts extension headers off the end of the body", () => {
  const b = hex(
    "32000000 01000000", // len 50, opcode 1 (LOOKUP)
    "3800000000000000", // unique 56
    "0100000000000000", // nodeid 1
    IDS_ROW,
    "92100000 0100 0000", // pid 4242, total_extlen 1 (8 bytes), padding
    "78 00", // "x\0"
    "08000000 20000000", // extension: size 8, type 32
  );
  const r = decodeOk(b);
  assert.equal(r.op === "LOOKUP" && r.name, "x");
  // A name that runs into the extension is not accepted as a name.
  const unterminated = b.slice();
  unterminated[41] = 0x79; // "xy" with no NUL before the extension
  assert.equal(decodeErr(unterminated).kind, "MissingName");
});

Deno.test("decodeRequest() returns ShortHeader for fewer than 40 bytes", () => {
  const e = decodeErr(LOOKUP.subarray(0, 39));
  assert.equal(e.kind, "ShortHeader");
  assert.equal(e.unique, undefined);
  assert.equal(decodeErr(new Uint8Array(0)).kind, "ShortHeader");
});

Deno.test("decodeRequest() returns LengthMismatch when len disagrees with the bytes read", () => {
  const e = decodeErr(LOOKUP, 49);
  assert.equal(e.kind, "LengthMismatch");
  assert.equal(e.unique, 4);
  assert.equal(e.opcode, 1);
  const bigger = LOOKUP.slice();
  bigger[0] = 0xff; // len 255 > 50 bytes
  assert.equal(decodeErr(bigger).kind, "LengthMismatch");
  const ext = LOOKUP.slice();
  ext[36] = 0x10; // total_extlen 16 units = 128 bytes > len
  assert.equal(decodeErr(ext).kind, "LengthMismatch");
});

Deno.test("decodeRequest() returns ShortRead when a struct is cut short", () => {
  const read = READ.subarray(0, 79).slice();
  read[0] = 79; // consistent len, body 39 < sizeof(fuse_read_in)
  const e = decodeErr(read);
  assert.equal(e.kind, "ShortRead");
  assert.equal(e.unique, 36);
  assert.match(e.message, /READ body of 39 bytes is shorter than the 40 bytes required/);
  const write = WRITE.slice();
  write[56] = 6; // size 6 but only 5 data bytes
  assert.equal(decodeErr(write).kind, "ShortRead");
  const batch = hex(
    "38000000 2a000000", // len 56, opcode 42 (BATCH_FORGET)
    "0e00000000000000", // unique 14
    "0000000000000000", // nodeid 0
    IDS_ROW,
    PID_ROW,
    "ffffffff 00000000", // count 2^32-1, dummy: far more than the body holds
    "0700000000000000", // [0] nodeid 7
  );
  assert.equal(decodeErr(batch).kind, "ShortRead");
});

Deno.test("decodeRequest() returns MissingName for absent, empty or unterminated names", () => {
  const noNul = LOOKUP.slice();
  noNul[49] = 0x21; // last byte "!" instead of NUL
  assert.equal(decodeErr(noNul).kind, "MissingName");
  const empty = LOOKUP.subarray(0, 41).slice();
  empty[0] = 41;
  empty[40] = 0; // "\0"
  assert.equal(decodeErr(empty).kind, "MissingName");
  const headerOnly = LOOKUP.subarray(0, 40).slice();
  headerOnly[0] = 40;
  assert.equal(decodeErr(headerOnly).kind, "MissingName");
  const rename = hex(
    "32000000 0c000000", // len 50, opcode 12 (RENAME)
    "1c00000000000000", // unique 28
    "0100000000000000", // nodeid 1
    IDS_ROW,
    PID_ROW,
    "0900000000000000", // newdir 9
    "61 00", // "a\0", then no second name
  );
  assert.equal(decodeErr(rename).kind, "MissingName");
});

Deno.test("decodeRequest() returns UnknownOpcode with the unique to answer", () => {
  const b = hex(
    "28000000 00100000", // len 40, opcode 4096 (CUSE_INIT)
    "3a00000000000000", // unique 58
    "0000000000000000", // nodeid 0
    IDS_ROW,
    PID_ROW,
  );
  const e = decodeErr(b);
  assert.equal(e.kind, "UnknownOpcode");
  assert.equal(e.opcode, 4096);
  assert.equal(e.unique, 58);
});

const GOLDEN = [LOOKUP, OPEN, READ, WRITE, RELEASE, BATCH_FORGET];

function checkResult(r: Request | DecodeError, input: Uint8Array): void {
  if (r instanceof DecodeError) {
    assert.ok(
      ["ShortHeader", "LengthMismatch", "ShortRead", "MissingName", "UnknownOpcode"].includes(
        r.kind,
      ),
    );
    return;
  }
  assert.equal(typeof r.op, "string");
  assert.ok(Number.isFinite(r.unique) && Number.isFinite(r.nodeid));
  if (r.op === "WRITE") {
    assert.equal(r.data.buffer, input.buffer);
    assert.ok(r.data.byteOffset + r.data.byteLength <= input.byteOffset + input.byteLength);
    assert.equal(r.data.byteLength, r.size);
  }
  if (r.op === "BATCH_FORGET") assert.ok(r.forgets.length * 16 + 48 <= input.byteLength);
}

/** A few thousand each in CI; S3CSI_FUZZ_RUNS asks for more. */
const RUNS = Number(Deno.env.get("S3CSI_FUZZ_RUNS") ?? 5000);

Deno.test("decodeRequest() never throws on random bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (bytes) => {
      checkResult(decodeRequest(bytes), bytes);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("decodeRequest() never throws on random headers with a consistent length", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 60 }),
      fc.uint8Array({ minLength: 0, maxLength: 200 }),
      fc.integer({ min: 0, max: 3 }),
      (opcode, body, extlen) => {
        const b = new Uint8Array(40 + body.byteLength);
        const v = new DataView(b.buffer);
        v.setUint32(0, b.byteLength, true);
        v.setUint32(4, opcode, true);
        v.setUint32(8, 2, true);
        v.setUint16(36, extlen, true);
        b.set(body, 40);
        checkResult(decodeRequest(b), b);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("decodeRequest() never throws on golden packets with fields set to their limits", () => {
  // Lengths, counts, sizes and offsets: any aligned u32 of a request may be one of them, set to
  // an absolute limit or to the packet's own length plus -1, 0 or +1.
  const limit = fc.oneof(
    fc.constantFrom(0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff),
    fc.integer({ min: -1, max: 1 }).map((d) => ({ lengthPlus: d })),
  );
  fc.assert(
    fc.property(
      fc.constantFrom(...GOLDEN),
      fc.array(fc.tuple(fc.nat(), limit), { minLength: 1, maxLength: 4 }),
      fc.boolean(),
      (golden, sets, fixLen) => {
        const b = golden.slice();
        const v = new DataView(b.buffer);
        for (const [pos, value] of sets) {
          const at = (pos % Math.floor(b.length / 4)) * 4;
          const n = typeof value === "number" ? value : b.length + value.lengthPlus;
          v.setUint32(at, n >>> 0, true);
        }
        if (fixLen) v.setUint32(0, b.length, true);
        checkResult(decodeRequest(b), b);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("decodeRequest() never throws on mutated valid packets", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...GOLDEN),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fc.option(fc.nat(), { nil: undefined }),
      fc.boolean(),
      (golden, flips, cut, fixLen) => {
        let b = golden.slice();
        for (const [pos, value] of flips) b[pos % b.length] = value;
        if (cut !== undefined) b = b.slice(0, cut % (b.length + 1));
        if (fixLen && b.length >= 4) new DataView(b.buffer).setUint32(0, b.length, true);
        checkResult(decodeRequest(b), b);
      },
    ),
    { numRuns: RUNS },
  );
});
