import assert from "node:assert/strict";
import type { Attr, Entry } from "../fs/api.ts";
import { S_IFDIR, S_IFREG } from "../fs/api.ts";
import { InitFlag } from "./abi.ts";
import { setU64 } from "./codec.ts";
import {
  DirentPacker,
  encodeInvalEntry,
  encodeInvalInode,
  writeAttrOut,
  writeEntryOut,
  writeInitOut,
  writeOpenOut,
  writeOutHeader,
  writeStatfsOut,
  writeWriteOut,
} from "./reply.ts";

function hex(...rows: string[]): Uint8Array {
  const s = rows.join("").replace(/\s+/g, "");
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Encodes with `fn` into a buffer pre-filled with 0xee, so unwritten bytes show up. */
function encode(size: number, fn: (v: DataView) => number): Uint8Array {
  const buf = new Uint8Array(size).fill(0xee);
  const n = fn(new DataView(buf.buffer));
  assert.equal(n, size, "encoder returned a wrong length");
  return buf;
}

const ATTR: Attr = {
  ino: 5,
  size: 2 ** 32 + 1,
  blocks: 8388609,
  atimeMs: 1700000000123,
  mtimeMs: 1700000001000,
  ctimeMs: -1500, // before 1970: -2 s + 0.5 s
  mode: S_IFREG | 0o644,
  nlink: 1,
  uid: 1000,
  gid: 1001,
  blksize: 4096,
};

const ATTR_BYTES = [
  "0500000000000000", // ino 5
  "0100000001000000", // size 2^32 + 1
  "0100800000000000", // blocks 8388609
  "00f1536500000000", // atime 1700000000
  "01f1536500000000", // mtime 1700000001
  "feffffffffffffff", // ctime -2
  "c0d45407 00000000", // atimensec 123000000, mtimensec 0
  "0065cd1d a4810000", // ctimensec 500000000, mode 0100644
  "01000000 e8030000", // nlink 1, uid 1000
  "e9030000 00000000", // gid 1001, rdev 0
  "00100000 00000000", // blksize 4096, flags 0
];

Deno.test("writeOutHeader() writes len, the negated errno and unique", () => {
  assert.deepEqual(
    encode(16, (v) => writeOutHeader(v, 0, 16, 2, 10)),
    hex(
      "10000000 feffffff", // len 16, error -ENOENT
      "0a00000000000000", // unique 10
    ),
  );
  assert.deepEqual(
    encode(16, (v) => writeOutHeader(v, 0, 144, 0, 2 ** 40)),
    hex(
      "90000000 00000000", // len 144, error 0
      "0000000000010000", // unique 2^40
    ),
  );
});

Deno.test("writeEntryOut() writes nodeid, generation, TTLs and the attributes", () => {
  const entry: Entry = { ino: 5, generation: 1, attr: ATTR, entryTtlMs: 1500, attrTtlMs: 250 };
  assert.deepEqual(
    encode(128, (v) => writeEntryOut(v, 0, entry)),
    hex(
      "0500000000000000", // nodeid 5
      "0100000000000000", // generation 1
      "0100000000000000", // entry_valid 1 s
      "0000000000000000", // attr_valid 0 s
      "0065cd1d 80b2e60e", // entry_valid_nsec 500000000, attr_valid_nsec 250000000
      ...ATTR_BYTES,
    ),
  );
});

Deno.test("writeAttrOut() writes the TTL, a zero dummy and the attributes", () => {
  assert.deepEqual(
    encode(104, (v) => writeAttrOut(v, 0, { attr: ATTR, ttlMs: 2000 })),
    hex(
      "0200000000000000", // attr_valid 2 s
      "00000000 00000000", // attr_valid_nsec 0, dummy
      ...ATTR_BYTES,
    ),
  );
});

Deno.test("writeEntryOut() clamps negative TTLs to zero", () => {
  const e: Entry = { ino: 5, generation: 0, attr: ATTR, entryTtlMs: -5, attrTtlMs: -1 };
  const b = encode(128, (v) => writeEntryOut(v, 0, e));
  assert.deepEqual(b.subarray(16, 40), new Uint8Array(24));
});

Deno.test("writeOpenOut() writes fh and the FOPEN flags", () => {
  assert.deepEqual(
    encode(16, (v) => writeOpenOut(v, 0, { fh: 7, directIo: true, keepCache: true })),
    hex(
      "0700000000000000", // fh 7
      "03000000 00000000", // open_flags DIRECT_IO|KEEP_CACHE, backing_id 0
    ),
  );
  assert.deepEqual(
    encode(16, (v) => writeOpenOut(v, 0, { fh: 2 ** 33, cacheDir: true })),
    hex(
      "0000000002000000", // fh 2^33
      "08000000 00000000", // open_flags CACHE_DIR, backing_id 0
    ),
  );
});

Deno.test("writeWriteOut() writes the accepted size", () => {
  assert.deepEqual(
    encode(8, (v) => writeWriteOut(v, 0, 4096)),
    hex("00100000 00000000"), // size 4096, padding
  );
});

Deno.test("writeStatfsOut() writes fuse_kstatfs with zeroed spare fields", () => {
  const b = encode(80, (v) =>
    writeStatfsOut(v, 0, {
      blocks: 2 ** 40,
      bfree: 1000,
      bavail: 999,
      files: Number.MAX_SAFE_INTEGER,
      ffree: 0,
      bsize: 4096,
      namelen: 255,
      frsize: 512,
    }));
  assert.deepEqual(
    b,
    hex(
      "0000000000010000", // blocks 2^40
      "e803000000000000", // bfree 1000
      "e703000000000000", // bavail 999
      "ffffffffffff1f00", // files 2^53 - 1
      "0000000000000000", // ffree 0
      "00100000 ff000000", // bsize 4096, namelen 255
      "00020000 00000000", // frsize 512, padding
      "00".repeat(24), // spare[6]
    ),
  );
});

Deno.test("writeInitOut() splits the flags into flags and flags2", () => {
  const flags = InitFlag.ASYNC_READ! | InitFlag.MAX_PAGES! | InitFlag.INIT_EXT! |
    InitFlag.SECURITY_CTX!;
  const b = encode(64, (v) =>
    writeInitOut(v, 0, {
      major: 7,
      minor: 38,
      maxReadahead: 1 << 20,
      flags,
      maxBackground: 64,
      congestionThreshold: 48,
      maxWrite: 1 << 20,
      timeGran: 1,
      maxPages: 256,
    }));
  assert.deepEqual(
    b,
    hex(
      "07000000 26000000", // major 7, minor 38
      "00001000 01004040", // max_readahead 1 MiB, flags ASYNC_READ|MAX_PAGES|INIT_EXT
      "4000 3000 00001000", // max_background 64, congestion_threshold 48, max_write 1 MiB
      "01000000 0001 0000", // time_gran 1, max_pages 256, map_alignment 0
      "01000000 00000000", // flags2 SECURITY_CTX (bit 32), max_stack_depth 0
      "0000", // request_timeout 0
      "00".repeat(22), // unused
    ),
  );
});

Deno.test("setU64() writes negatives as i64 and saturates beyond 2^53", () => {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  setU64(v, 0, -1);
  assert.deepEqual(b, hex("ffffffffffffffff"));
  setU64(v, 0, Infinity);
  assert.deepEqual(b, hex("ffffffffffffffff"));
  setU64(v, 0, NaN);
  assert.deepEqual(b, hex("0000000000000000"));
  setU64(v, 0, 2 ** 60);
  assert.deepEqual(b, hex("0000000000000010"));
});

Deno.test("encodeInvalInode() writes a notification header and notify_inval_inode_out", () => {
  assert.deepEqual(
    encodeInvalInode(5, -1, 0),
    hex(
      "28000000 02000000", // len 40, error = code NOTIFY_INVAL_INODE (positive)
      "0000000000000000", // unique 0: a notification
      "0500000000000000", // ino 5
      "ffffffffffffffff", // off -1: attributes only
      "0000000000000000", // len 0: to the end
    ),
  );
});

Deno.test("encodeInvalEntry() writes notify_inval_entry_out, the name and a NUL", () => {
  assert.deepEqual(
    encodeInvalEntry(2, "ab"),
    hex(
      "23000000 03000000", // len 35, error = code NOTIFY_INVAL_ENTRY
      "0000000000000000", // unique 0
      "0200000000000000", // parent 2
      "02000000 00000000", // namelen 2, flags 0
      "6162 00", // "ab\0"
    ),
  );
});

Deno.test("DirentPacker packs dirents padded to 8 bytes with the next cookie and type", () => {
  const buf = new Uint8Array(256).fill(0xee);
  const p = new DirentPacker(buf).reset(16, 4096, false);
  assert.equal(p.add({ name: "a", ino: 5, type: S_IFREG, nextOffset: 1 }), true);
  assert.equal(p.add({ name: "dir", ino: 6, type: S_IFDIR | 0o755, nextOffset: 2 }), true);
  assert.equal(p.length, 64);
  assert.deepEqual(
    buf.subarray(16, 16 + 64),
    hex(
      "0500000000000000", // ino 5
      "0100000000000000", // off 1 (cookie of the next entry)
      "01000000 08000000", // namelen 1, type DT_REG
      "61 00000000000000", // "a" + padding to 8
      "0600000000000000", // ino 6
      "0200000000000000", // off 2
      "03000000 04000000", // namelen 3, type DT_DIR
      "646972 0000000000", // "dir" + padding
    ),
  );
  assert.equal(buf[15], 0xee, "nothing written before start");
  assert.equal(buf[80], 0xee, "nothing written after the last record");
});

Deno.test("DirentPacker refuses an entry that does not fit whole and keeps what fit", () => {
  const buf = new Uint8Array(128).fill(0xee);
  const p = new DirentPacker(buf).reset(0, 40, false);
  assert.equal(p.add({ name: "first", ino: 2, type: S_IFREG, nextOffset: 1 }), true);
  assert.equal(p.add({ name: "second", ino: 3, type: S_IFREG, nextOffset: 2 }), false);
  assert.equal(p.length, 32);
  assert.equal(buf[32], 0xee, "the refused entry left no bytes behind");
  // A multi-byte UTF-8 name counts its bytes, not its characters.
  const q = new DirentPacker(buf).reset(0, 128, false);
  q.add({ name: "é", ino: 4, type: S_IFREG, nextOffset: 1 });
  assert.equal(new DataView(buf.buffer).getUint32(16, true), 2);
});

Deno.test("DirentPacker packs direntplus records with entry_out, zeroed when absent", () => {
  const buf = new Uint8Array(512).fill(0xee);
  const p = new DirentPacker(buf).reset(0, 512, true);
  assert.equal(p.add({ name: ".", ino: 1, type: S_IFDIR, nextOffset: 1 }), true);
  const entry: Entry = { ino: 5, generation: 1, attr: ATTR, entryTtlMs: 1500, attrTtlMs: 250 };
  assert.equal(p.add({ name: "f", ino: 5, type: S_IFREG, nextOffset: 2, entry }), true);
  assert.equal(p.length, 320);
  assert.deepEqual(buf.subarray(0, 128), new Uint8Array(128), "no entry: nodeid 0 and zeros");
  assert.deepEqual(
    buf.subarray(128, 160),
    hex(
      "0100000000000000", // ino 1
      "0100000000000000", // off 1
      "01000000 04000000", // namelen 1, type DT_DIR
      "2e 00000000000000", // "." + padding
    ),
  );
  const withEntry = buf.subarray(160, 320);
  assert.deepEqual(
    withEntry.subarray(0, 40),
    hex(
      "0500000000000000", // entry_out.nodeid 5
      "0100000000000000", // generation 1
      "0100000000000000", // entry_valid 1 s
      "0000000000000000", // attr_valid 0 s
      "0065cd1d 80b2e60e", // entry_valid_nsec, attr_valid_nsec
    ),
  );
  assert.deepEqual(withEntry.subarray(40, 128), hex(...ATTR_BYTES));
  assert.deepEqual(
    withEntry.subarray(128, 160),
    hex(
      "0500000000000000", // dirent.ino 5
      "0200000000000000", // off 2
      "01000000 08000000", // namelen 1, type DT_REG
      "66 00000000000000", // "f" + padding
    ),
  );
  // 152 + 1 bytes do not fit in 159.
  const small = new DirentPacker(new Uint8Array(200)).reset(0, 159, true);
  assert.equal(small.add({ name: "f", ino: 5, type: S_IFREG, nextOffset: 2, entry }), false);
  assert.equal(small.length, 0);
});
