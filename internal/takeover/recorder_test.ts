/**
 * The journal fed by a real session (on the fake device of
 * internal/fuse/testing/fake_kernel.ts): when the kernel receives a reply,
 * the journal's file already holds what the reply hands out, and a
 * successor replaying it gets the kernel's view.
 */
import assert from "node:assert/strict";
import { S_IFDIR } from "../fs/api.ts";
import { log } from "../log/mod.ts";
import { Op } from "../fuse/abi.ts";
import {
  body,
  cat,
  entry,
  name,
  readBody,
  stubFs,
  withSession,
} from "../fuse/testing/fake_kernel.ts";
import { Journal, type JournalSink, replay } from "./journal.ts";
import { JournalRecorder, successorOf } from "./recorder.ts";

class MemorySink implements JournalSink {
  text = "";
  append(text: string): void {
    this.text += text;
  }
  replace(text: string): void {
    this.text = text;
  }
}

const openIn = () => body(["u32", 0], ["u32", 0]);
const releaseIn = (fh: number) => body(["u64", fh], ["u32", 0], ["u32", 0], ["u64", 0]);
const getattrIn = () => body(["u32", 0], ["u32", 0], ["u64", 0]);

Deno.test("JournalRecorder: each reply reaches the kernel after the records it makes true; the replay is the kernel's view", async () => {
  const sink = new MemorySink();
  const recorder = new JournalRecorder(new Journal(sink), log, () => {});
  const dir = { ...entry(6), attr: { ...entry(6).attr, mode: S_IFDIR | 0o755 } };
  const fs = stubFs({
    lookup: () => Promise.resolve(entry(5)),
    open: () => Promise.resolve({ fh: 9 }),
    pinnedVersion: (fh) => (fh === 9 ? '"etag-x"' : undefined),
    release: () => Promise.resolve(),
    opendir: () => Promise.resolve({ fh: 3 }),
    releasedir: () => Promise.resolve(),
    readdir: (_c, ino, _fh, offset, _plus, add) => {
      if (offset > 0) return Promise.resolve();
      add({ name: ".", ino, type: S_IFDIR, nextOffset: 1, entry: dir });
      add({ name: "..", ino, type: S_IFDIR, nextOffset: 2, entry: dir });
      add({ name: "sub", ino: 6, type: S_IFDIR, nextOffset: 3, entry: dir });
      add({ name: "f", ino: 7, type: 0o100000, nextOffset: 4, entry: entry(7) });
      return Promise.resolve();
    },
  });
  await withSession(fs, { recorder }, async (k, session) => {
    const seen = () => replay(sink.text);
    assert.deepEqual(successorOf(seen()).resume, session.negotiated, "INIT is recorded");

    k.send(Op.LOOKUP, 2, 1, name("a"));
    await k.recv();
    assert.deepEqual(seen().nodes.get(5), {
      parent: 1,
      name: "a",
      kind: "file",
      refs: 1,
      kids: 0,
      opens: 0,
    });
    k.send(Op.LOOKUP, 3, 1, name("a"));
    await k.recv();
    assert.equal(seen().nodes.get(5)?.refs, 2);

    k.send(Op.OPEN, 4, 5, openIn());
    await k.recv();
    assert.deepEqual(seen().handles.get(9), { ino: 5, flags: 0, etag: '"etag-x"' });

    k.send(Op.OPENDIR, 5, 1, openIn());
    await k.recv();
    k.send(Op.READDIRPLUS, 6, 1, readBody(3, 0, 4096));
    await k.recv();
    const listed = seen();
    assert.equal(listed.nodes.get(6)?.kind, "dir", "a readdirplus entry is a reference");
    assert.equal(listed.nodes.get(7)?.refs, 1);
    assert.equal(listed.nodes.get(1)?.refs, 0, `"." and ".." take no reference`);

    // FORGET has no reply: the next reply shows it. The handle still holds node 5.
    k.send(Op.FORGET, 7, 5, body(["u64", 2]));
    k.send(Op.GETATTR, 8, 1, getattrIn());
    await k.recv();
    assert.equal(seen().nodes.get(5)?.refs, 0);
    k.send(Op.RELEASE, 9, 5, releaseIn(9));
    await k.recv();
    assert.equal(seen().nodes.has(5), false, "released and forgotten: gone");

    const next = successorOf(seen());
    assert.deepEqual(next.adoption.nodes.map((n) => n.ino).sort(), [6, 7]);
    assert.deepEqual(next.adoption.handles, [{ fh: 3, ino: 1, flags: 0 }]);
    assert.equal(next.adoption.nextIno, 8);
    assert.equal(next.adoption.nextFh, 10);
  });
});

Deno.test("JournalRecorder: a journal that cannot be written stops recording and is discarded; requests are still answered", async () => {
  let discarded = 0;
  const failing: JournalSink = {
    append: () => {
      throw new Error("No space left on device");
    },
    replace: () => {},
  };
  const recorder = new JournalRecorder(new Journal(failing), log, () => discarded++);
  const fs = stubFs({ lookup: () => Promise.resolve(entry(5)) });
  await withSession(fs, { recorder }, async (k) => {
    k.send(Op.LOOKUP, 2, 1, cat(name("a")));
    assert.equal((await k.recv()).error, 0);
    k.send(Op.LOOKUP, 3, 1, name("b"));
    assert.equal((await k.recv()).error, 0);
  });
  assert.equal(recorder.healthy, false);
  assert.equal(discarded, 1);
});
