/**
 * Session tests without a kernel, on the fake device of
 * `testing/fake_kernel.ts`: the test plays the kernel.
 */
import assert from "node:assert/strict";
import {
  type AttrReply,
  type DirEntry,
  Errno,
  FsError,
  type RequestContext,
  S_IFREG,
  type SetattrChanges,
} from "../fs/api.ts";
import { E } from "../sys/libc.ts";
import { FATTR, InitFlag, Op } from "./abi.ts";
import { FuseSession } from "./session.ts";
import {
  ATTR,
  body,
  captureLogs,
  cat,
  enc,
  entry,
  FakeKernel,
  initBody,
  name,
  readBody,
  stubFs,
  withSession,
} from "./testing/fake_kernel.ts";

Deno.test("FuseSession negotiates INIT: our minor, wanted flags, 1 MiB writes", async () => {
  const fs = stubFs();
  const k = new FakeKernel();
  const s = new FuseSession(k.serverFd, fs);
  const running = s.run();
  try {
    k.send(Op.INIT, 2, 0, initBody(7, 45, 131072));
    const r = await k.recv();
    assert.equal(r.unique, 2);
    assert.equal(r.error, 0);
    assert.equal(r.payload.byteLength, 64);
    const v = r.view;
    assert.equal(v.getUint32(0, true), 7); // major
    assert.equal(v.getUint32(4, true), 38); // minor
    assert.equal(v.getUint32(8, true), 131072); // max_readahead = min(kernel, ours)
    const flags = BigInt(v.getUint32(12, true));
    for (
      const f of [
        "ASYNC_READ",
        "BIG_WRITES",
        "MAX_PAGES",
        "PARALLEL_DIROPS",
        "DO_READDIRPLUS",
        "READDIRPLUS_AUTO",
        "ATOMIC_O_TRUNC",
        "AUTO_INVAL_DATA",
      ]
    ) {
      assert.ok(flags & InitFlag[f]!, `${f} negotiated`);
    }
    for (const f of ["WRITEBACK_CACHE", "POSIX_LOCKS", "ASYNC_DIO", "INIT_EXT", "SPLICE_READ"]) {
      assert.equal(flags & InitFlag[f]!, 0n, `${f} not negotiated`);
    }
    assert.equal(v.getUint16(16, true), 64); // max_background
    assert.equal(v.getUint16(18, true), 48); // congestion_threshold
    assert.equal(v.getUint32(20, true), 1 << 20); // max_write
    assert.equal(v.getUint32(24, true), 1); // time_gran
    assert.equal(v.getUint16(28, true), 256); // max_pages
    assert.equal(v.getUint32(32, true), 0); // flags2
    assert.deepEqual(fs.log, ["init"]);
    const n = await s.ready;
    assert.equal(n.minor, 38);
    assert.equal(n.kernelMinor, 45);
    assert.equal(n.maxPages, 256);
  } finally {
    k.close();
    await running;
  }
  assert.deepEqual(fs.log, ["init", "destroy"]);
});

Deno.test("FuseSession answers a newer major with its own version and waits for another INIT", async () => {
  const fs = stubFs();
  const logs = await captureLogs(() =>
    withSession(fs, {}, async (k, s) => {
      k.send(Op.INIT, 2, 0, initBody(8, 0));
      const r = await k.recv();
      assert.equal(r.error, 0);
      assert.equal(r.view.getUint32(0, true), 7);
      assert.equal(r.view.getUint32(4, true), 38);
      assert.deepEqual(fs.log, []);
      k.send(Op.INIT, 4, 0, initBody(7, 45));
      const r2 = await k.recv();
      assert.equal(r2.unique, 4);
      assert.equal(r2.error, 0);
      assert.equal((await s.ready).minor, 38);
    }, false)
  );
  assert.ok(
    logs.some((l) => l.msg === "Kernel offered a newer FUSE major version, answered with ours"),
  );
});

Deno.test("FuseSession refuses INIT from a too old protocol with EPROTO", async () => {
  for (const [major, minor] of [[6, 99], [7, 22]]) {
    const logs = await captureLogs(() =>
      withSession(stubFs(), {}, async (k) => {
        k.send(Op.INIT, 2, 0, initBody(major, minor));
        const r = await k.recv();
        assert.equal(r.error, -E.EPROTO);
        assert.equal(r.len, 16);
      }, false)
    );
    assert.ok(logs.some((l) => l.msg === "Kernel FUSE protocol is too old"));
  }
});

Deno.test("FuseSession answers EIO to requests that arrive before INIT", async () => {
  await withSession(stubFs(), {}, async (k) => {
    k.send(Op.GETATTR, 2, 1, new Uint8Array(16));
    const r = await k.recv();
    assert.equal(r.unique, 2);
    assert.equal(r.error, -Errno.EIO);
  }, false);
});

Deno.test("FuseSession answers ENOSYS for what the FileSystem contract lacks or the FS leaves out", async () => {
  await withSession(stubFs(), {}, async (k) => {
    const cases: [number, Uint8Array, number][] = [
      [Op.SYMLINK, cat(name("l"), name("t")), Errno.ENOSYS], // no fs.symlink
      [Op.LINK, cat(body(["u64", 5]), name("l")), Errno.ENOSYS], // no fs.link
      [Op.GETXATTR, cat(body(["u32", 0], ["u32", 0]), name("user.x")), Errno.ENOSYS],
      [
        Op.SETXATTR,
        cat(body(["u32", 1], ["u32", 0]), name("user.x"), enc.encode("v")),
        Errno.ENOSYS,
      ],
      [Op.LISTXATTR, body(["u32", 0], ["u32", 0]), Errno.ENOSYS],
      [Op.READLINK, new Uint8Array(0), Errno.ENOSYS],
      [Op.ACCESS, body(["u32", 4], ["u32", 0]), Errno.ENOSYS],
      [Op.FSYNCDIR, body(["u64", 1], ["u32", 0], ["u32", 0]), Errno.ENOSYS],
      [Op.FALLOCATE, new Uint8Array(32), Errno.ENOSYS],
      [Op.LSEEK, new Uint8Array(24), Errno.ENOSYS],
      [Op.STATX, new Uint8Array(24), Errno.ENOSYS],
      [Op.TMPFILE, new Uint8Array(16), Errno.ENOSYS],
      [4096, new Uint8Array(0), Errno.ENOSYS], // unknown opcode
    ];
    let unique = 10;
    for (const [opcode, b, errno] of cases) {
      k.send(opcode, unique, 1, b);
      const r = await k.recv();
      assert.equal(r.unique, unique, `opcode ${opcode}`);
      assert.equal(r.error, -errno, `opcode ${opcode}`);
      unique += 2;
    }
  });
});

Deno.test("FuseSession passes SYMLINK and LINK to the FS that implements them", async () => {
  const calls: string[] = [];
  const fs = stubFs({
    symlink: (_c, parent, n, target) => {
      calls.push(`symlink ${parent} ${n} -> ${target}`);
      return Promise.resolve(entry(20));
    },
    link: (_c, ino, newParent, newName) => {
      calls.push(`link ${ino} ${newParent} ${newName}`);
      return n === 0 ? Promise.resolve(entry(ino)) : Promise.reject(new FsError(Errno.EPERM, "no"));
    },
  });
  let n = 0;
  await withSession(fs, {}, async (k) => {
    k.send(Op.SYMLINK, 10, 1, cat(name("ln"), name("../target")));
    const r = await k.recv();
    assert.equal(r.error, 0);
    assert.equal(r.payload.byteLength, 128, "an entry_out");
    assert.equal(r.view.getBigUint64(0, true), 20n); // nodeid
    k.send(Op.LINK, 12, 3, cat(body(["u64", 5]), name("hard")));
    const r2 = await k.recv();
    assert.equal(r2.error, 0);
    assert.equal(r2.view.getBigUint64(0, true), 5n);
    n++;
    k.send(Op.LINK, 14, 3, cat(body(["u64", 5]), name("again")));
    assert.equal((await k.recv()).error, -Errno.EPERM, "the FS's own refusal");
  });
  assert.deepEqual(calls, ["symlink 1 ln -> ../target", "link 5 3 hard", "link 5 3 again"]);
});

Deno.test("FuseSession answers a malformed request with EIO and logs it", async () => {
  const logs = await captureLogs(() =>
    withSession(stubFs(), {}, async (k) => {
      k.send(Op.READ, 6, 5, new Uint8Array(8)); // read_in needs 40 bytes
      const r = await k.recv();
      assert.equal(r.unique, 6);
      assert.equal(r.error, -Errno.EIO);
    })
  );
  assert.ok(logs.some((l) => l.msg === "Malformed FUSE request" && l.kind === "ShortRead"));
});

Deno.test("FuseSession sends nothing for a malformed request the kernel expects no reply to", async () => {
  const fs = stubFs();
  const logs = await captureLogs(() =>
    withSession(fs, {}, async (k) => {
      k.send(Op.INTERRUPT, 10, 0, new Uint8Array(4)); // interrupt_in needs 8 bytes
      k.send(Op.FORGET, 12, 7, new Uint8Array(4)); // forget_in needs 8 bytes
      k.send(Op.GETATTR, 14, 1, new Uint8Array(16));
      assert.equal((await k.recv()).unique, 14, "the first reply is the GETATTR's");
      assert.ok(await k.idle());
    })
  );
  assert.equal(fs.log.filter((l) => l.startsWith("forget")).length, 0);
  assert.equal(logs.filter((l) => l.msg === "Malformed FUSE request").length, 2);
});

Deno.test("FuseSession replies with the errno of an FsError and EIO for other errors", async () => {
  const fs = stubFs({
    lookup: (_c, _p, n) =>
      n === "missing"
        ? Promise.reject(new FsError(Errno.ENOENT, "no such key"))
        : Promise.reject(new TypeError("boom")),
  });
  const logs = await captureLogs(() =>
    withSession(fs, {}, async (k) => {
      k.send(Op.LOOKUP, 10, 1, name("missing"));
      const r = await k.recv();
      assert.equal(r.error, -Errno.ENOENT);
      k.send(Op.LOOKUP, 12, 1, name("bug"));
      const r2 = await k.recv();
      assert.equal(r2.unique, 12);
      assert.equal(r2.error, -Errno.EIO);
    })
  );
  const failed = logs.filter((l) => l.msg === "FUSE handler failed");
  assert.equal(failed.length, 1, "only the non-FsError is logged as a failure");
  assert.equal(failed[0]!.op, "LOOKUP");
});

Deno.test("FuseSession sends no reply to FORGET and BATCH_FORGET but forwards them", async () => {
  const fs = stubFs();
  await withSession(fs, {}, async (k) => {
    k.send(Op.FORGET, 10, 7, body(["u64", 3]));
    k.send(
      Op.BATCH_FORGET,
      12,
      0,
      body(["u32", 2], ["u32", 0], ["u64", 8], ["u64", 1], ["u64", 9], ["u64", 2]),
    );
    k.send(Op.GETATTR, 14, 1, new Uint8Array(16));
    const r = await k.recv();
    assert.equal(r.unique, 14, "the first reply is the GETATTR's");
    assert.equal(r.view.getBigUint64(16, true), 1n); // attr.ino
    assert.deepEqual(fs.log.slice(1), ["forget 7 3", "forget 8 1", "forget 9 2"]);
    assert.ok(await k.idle());
  });
});

Deno.test("FuseSession handles requests concurrently and replies as each completes", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const fs = stubFs({
    read: async () => {
      await gate;
      return new Uint8Array([1, 2, 3]);
    },
  });
  await withSession(fs, {}, async (k) => {
    k.send(Op.READ, 10, 5, readBody(1, 0, 4096));
    k.send(Op.GETATTR, 12, 5, new Uint8Array(16));
    const first = await k.recv();
    assert.equal(first.unique, 12, "GETATTR overtakes the blocked READ");
    release();
    const second = await k.recv();
    assert.equal(second.unique, 10);
    assert.deepEqual([...second.payload], [1, 2, 3]);
  });
});

Deno.test("FuseSession stops reading when every buffer is busy and resumes when one frees", async () => {
  const gates: (() => void)[] = [];
  const fs = stubFs({
    read: (_c, _i, fh) =>
      new Promise<Uint8Array>((resolve) => gates.push(() => resolve(new Uint8Array([fh])))),
  });
  await withSession(fs, { maxInFlight: 2 }, async (k) => {
    for (let i = 0; i < 3; i++) k.send(Op.READ, 10 + 2 * i, 5, readBody(i, 0, 10));
    while (gates.length < 2) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(gates.length, 2, "the third request waits in the kernel queue");
    gates[0]!();
    assert.equal((await k.recv()).unique, 10);
    while (gates.length < 3) await new Promise((r) => setTimeout(r, 5));
    gates[1]!();
    gates[2]!();
    const rest = [await k.recv(), await k.recv()].map((r) => r.unique).sort();
    assert.deepEqual(rest, [12, 14]);
  });
});

Deno.test("FuseSession aborts the signal of an interrupted request and answers it EINTR", async () => {
  let seen: RequestContext | null = null;
  const fs = stubFs({
    read: (ctx) =>
      new Promise<Uint8Array>((_resolve, reject) => {
        seen = ctx;
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
      }),
  });
  await withSession(fs, {}, async (k) => {
    k.send(Op.READ, 20, 5, readBody(1, 0, 4096));
    while (seen === null) await new Promise((r) => setTimeout(r, 5));
    k.send(Op.INTERRUPT, 21, 0, body(["u64", 20]));
    const r = await k.recv();
    assert.equal(r.unique, 20);
    assert.equal(r.error, -Errno.EINTR);
    assert.equal(seen!.signal.aborted, true);
    assert.ok(await k.idle(), "the INTERRUPT itself is never answered");
  });
});

Deno.test("FuseSession.handOver() answers the requests it read, reads no more and does not destroy the file system", async () => {
  const gate = { release: null as (() => void) | null };
  const fs = stubFs({
    read: () =>
      new Promise<Uint8Array>((resolve) => gate.release = () => resolve(enc.encode("data"))),
  });
  const k = new FakeKernel();
  const s = new FuseSession(k.serverFd, fs, { closeFd: false });
  const running = s.run();
  k.send(Op.INIT, 2, 0, initBody());
  await k.recv();
  k.send(Op.READ, 20, 5, readBody(1, 0, 4096));
  while (gate.release === null) await new Promise((r) => setTimeout(r, 5));
  const handedOver = s.handOver();
  // Queued after the hand-over began: the successor's to read.
  k.send(Op.GETATTR, 22, 1, new Uint8Array(16));
  gate.release();
  const r = await k.recv();
  assert.equal(r.unique, 20);
  assert.equal(r.error, 0, "the call in flight is answered, not aborted");
  await handedOver;
  await running;
  assert.ok(await k.idle(), "the GETATTR queued after the hand-over is left to the successor");
  assert.ok(!fs.log.includes("destroy"), "the file system is not destroyed");
  assert.equal(s.handedOver, true);
  k.close();
});

Deno.test("FuseSession rejects other users with EACCES when allowRoot is set", async () => {
  const fs = stubFs();
  await withSession(fs, { allowRoot: true, ownerUid: 1000 }, async (k) => {
    k.send(Op.GETATTR, 10, 1, new Uint8Array(16), 2000);
    assert.equal((await k.recv()).error, -Errno.EACCES);
    k.send(Op.GETATTR, 12, 1, new Uint8Array(16), 1000);
    assert.equal((await k.recv()).error, 0);
    k.send(Op.GETATTR, 14, 1, new Uint8Array(16), 0);
    assert.equal((await k.recv()).error, 0);
    // Kernel housekeeping from any uid still goes through.
    k.send(Op.FORGET, 16, 9, body(["u64", 1]), 2000);
    k.send(Op.GETATTR, 18, 1, new Uint8Array(16), 1000);
    assert.equal((await k.recv()).unique, 18);
    assert.ok(fs.log.includes("forget 9 1"));
  });
});

Deno.test("FuseSession answers CREATE with entry_out and open_out", async () => {
  const calls: string[] = [];
  const fs = stubFs({
    mknod: (_c, parent, n, mode, umask) => {
      calls.push(`mknod ${parent} ${n} ${mode.toString(8)} ${umask.toString(8)}`);
      return Promise.resolve(entry(9));
    },
    open: (_c, ino, flags) => {
      calls.push(`open ${ino} ${flags.toString(8)}`);
      return Promise.resolve({ fh: 77, directIo: true });
    },
  });
  await withSession(fs, {}, async (k) => {
    k.send(
      Op.CREATE,
      10,
      1,
      cat(body(["u32", 0o100101], ["u32", 0o100644], ["u32", 0o22], ["u32", 0]), name("new")),
    );
    const r = await k.recv();
    assert.equal(r.error, 0);
    assert.equal(r.payload.byteLength, 128 + 16);
    assert.equal(r.view.getBigUint64(0, true), 9n); // nodeid
    assert.equal(r.view.getBigUint64(128, true), 77n); // fh
    assert.equal(r.view.getUint32(136, true), 1); // FOPEN_DIRECT_IO
    assert.deepEqual(calls, ["mknod 1 new 100644 22", "open 9 100101"]);
  });
});

Deno.test("FuseSession gives back mknod's lookup when CREATE fails to open", async () => {
  const fs = stubFs({
    mknod: () => Promise.resolve(entry(9)),
    open: () => Promise.reject(new FsError(Errno.ENOMEM, "too many writers")),
  });
  await withSession(fs, {}, async (k) => {
    k.send(Op.CREATE, 10, 1, cat(new Uint8Array(16), name("x")));
    const r = await k.recv();
    assert.equal(r.error, -Errno.ENOMEM);
    assert.ok(fs.log.includes("forget 9 1"));
  });
  const fs2 = stubFs({ mknod: () => Promise.reject(new FsError(Errno.EEXIST, "exists")) });
  await withSession(fs2, {}, async (k) => {
    k.send(Op.CREATE, 10, 1, cat(new Uint8Array(16), name("x")));
    assert.equal((await k.recv()).error, -Errno.EEXIST);
  });
});

Deno.test("FuseSession replies to READ with the data, large or small, cut to the size asked", async () => {
  const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
  const fs = stubFs({
    read: (_c, _i, _fh, offset, size) =>
      Promise.resolve(offset === 0 ? big : new Uint8Array(size + 10).fill(3)),
  });
  await withSession(fs, {}, async (k) => {
    k.send(Op.READ, 10, 5, readBody(1, 0, 100_000));
    const r = await k.recv();
    assert.equal(r.len, 16 + 100_000);
    assert.deepEqual(r.payload, big);
    k.send(Op.READ, 12, 5, readBody(1, 4096, 100));
    const r2 = await k.recv();
    assert.equal(r2.payload.byteLength, 100, "extra bytes are cut off");
  });
});

Deno.test("FuseSession passes WRITE data as a view and answers the accepted size", async () => {
  let got = "";
  const fs = stubFs({
    write: (_c, ino, fh, offset, data) => {
      got = `${ino} ${fh} ${offset} ${new TextDecoder().decode(data)}`;
      return Promise.resolve(data.byteLength);
    },
  });
  await withSession(fs, {}, async (k) => {
    const w = body(["u64", 3], ["u64", 4096], ["u32", 5], ["u32", 0], ["u64", 0], ["u32", 0], [
      "u32",
      0,
    ]);
    k.send(Op.WRITE, 10, 5, cat(w, enc.encode("hello")));
    const r = await k.recv();
    assert.equal(r.error, 0);
    assert.equal(r.view.getUint32(0, true), 5);
    assert.equal(got, "5 3 4096 hello");
  });
});

Deno.test("FuseSession converts SETATTR fields into changes", async () => {
  let seen: [SetattrChanges, number | undefined] | null = null;
  const fs = stubFs({
    setattr: (_c, ino, ch, fh): Promise<AttrReply> => {
      seen = [ch, fh];
      return Promise.resolve({ attr: { ...ATTR, ino }, ttlMs: 1000 });
    },
  });
  await withSession(fs, {}, async (k) => {
    const b = new Uint8Array(88);
    const v = new DataView(b.buffer);
    v.setUint32(
      0,
      FATTR.MODE | FATTR.SIZE | FATTR.ATIME | FATTR.ATIME_NOW | FATTR.MTIME | FATTR.FH,
      true,
    );
    v.setBigUint64(8, 44n, true); // fh
    v.setBigUint64(16, 0n, true); // size 0
    v.setBigUint64(40, 1700000000n, true); // mtime
    v.setUint32(60, 250_000_000, true); // mtimensec
    v.setUint32(68, 0o100600, true); // mode
    k.send(Op.SETATTR, 10, 5, b);
    const r = await k.recv();
    assert.equal(r.error, 0);
    assert.deepEqual(seen, [
      { mode: 0o100600, size: 0, atimeMs: "now", mtimeMs: 1700000000250 },
      44,
    ]);
  });
});

Deno.test("FuseSession packs READDIR entries into the size the kernel asked for", async () => {
  const names = Array.from({ length: 100 }, (_, i) => `file-${i}`);
  const fs = stubFs({
    readdir: (_c, _ino, _fh, offset, _plus, add: (e: DirEntry) => boolean) => {
      for (let i = offset; i < names.length; i++) {
        if (!add({ name: names[i]!, ino: 10 + i, type: S_IFREG, nextOffset: i + 1 })) break;
      }
      return Promise.resolve();
    },
  });
  await withSession(fs, {}, async (k) => {
    const seen: string[] = [];
    let offset = 0;
    for (let unique = 10; unique < 100; unique += 2) {
      k.send(Op.READDIR, unique, 1, readBody(1, offset, 512));
      const r = await k.recv();
      assert.ok(r.payload.byteLength <= 512);
      if (r.payload.byteLength === 0) break;
      for (let p = 0; p < r.payload.byteLength;) {
        const namelen = r.view.getUint32(p + 16, true);
        assert.equal(r.view.getUint32(p + 20, true), S_IFREG >> 12);
        seen.push(new TextDecoder().decode(r.payload.subarray(p + 24, p + 24 + namelen)));
        offset = Number(r.view.getBigUint64(p + 8, true));
        p += (24 + namelen + 7) & ~7;
      }
    }
    assert.deepEqual(seen, names);
  });
});

Deno.test("FuseSession.ready rejects when the session ends before INIT", async () => {
  const k = new FakeKernel();
  const s = new FuseSession(k.serverFd, stubFs());
  const running = s.run();
  k.close();
  await running;
  await assert.rejects(s.ready, /FUSE session ended before INIT: eof/);
});

Deno.test("FuseSession.stop() ends run() and calls destroy once", async () => {
  const fs = stubFs();
  const k = new FakeKernel();
  const s = new FuseSession(k.serverFd, fs);
  const running = s.run();
  k.send(Op.INIT, 2, 0, initBody());
  await k.recv();
  s.stop();
  await running;
  assert.deepEqual(fs.log, ["init", "destroy"]);
  k.close();
});

Deno.test("FuseSession answers STATFS, OPENDIR and DESTROY", async () => {
  const fs = stubFs({
    statfs: () =>
      Promise.resolve({
        blocks: 1,
        bfree: 2,
        bavail: 3,
        files: 4,
        ffree: 5,
        bsize: 4096,
        namelen: 255,
        frsize: 4096,
      }),
    opendir: () => Promise.resolve({ fh: 3, cacheDir: true }),
  });
  await withSession(fs, {}, async (k) => {
    k.send(Op.STATFS, 10, 1);
    const r = await k.recv();
    assert.equal(r.payload.byteLength, 80);
    assert.equal(r.view.getBigUint64(16, true), 3n); // bavail
    k.send(Op.OPENDIR, 12, 1, body(["u32", 0], ["u32", 0]));
    const r2 = await k.recv();
    assert.equal(r2.view.getUint32(8, true), 8); // FOPEN_CACHE_DIR
    k.send(Op.DESTROY, 14, 0);
    assert.equal((await k.recv()).error, 0);
    assert.ok(fs.log.includes("destroy"));
  });
  assert.equal(fs.log.filter((l) => l === "destroy").length, 1);
});
