import assert from "node:assert/strict";
import {
  COMPACT_MIN_LINES,
  FileSink,
  type InitValues,
  Journal,
  type JournalSink,
  type JournalState,
  replay,
  ROOT,
} from "./journal.ts";

const INIT: InitValues = {
  major: 7,
  minor: 41,
  flags: "0x1234",
  maxWrite: 1 << 20,
  maxReadahead: 1 << 17,
  timeGran: 1,
};

/** Keeps every byte appended, as a file would, and counts rewrites. */
class MemorySink implements JournalSink {
  text = "";
  replaced = 0;
  append(text: string): void {
    this.text += text;
  }
  replace(text: string): void {
    this.text = text;
    this.replaced++;
  }
}

/** Every invariant a replayed state must hold, checked from scratch. */
function assertConsistent(s: JournalState): void {
  const kids = new Map<number, number>();
  const opens = new Map<number, number>();
  for (const [ino, n] of s.nodes) {
    if (ino === ROOT) continue;
    assert.ok(s.nodes.has(n.parent), `node ${ino} has no parent ${n.parent}`);
    kids.set(n.parent, (kids.get(n.parent) ?? 0) + 1);
  }
  for (const [fh, h] of s.handles) {
    assert.ok(s.nodes.has(h.ino), `handle ${fh} is on unknown node ${h.ino}`);
    opens.set(h.ino, (opens.get(h.ino) ?? 0) + 1);
  }
  for (const [ino, n] of s.nodes) {
    assert.equal(n.kids, kids.get(ino) ?? 0, `children of ${ino}`);
    assert.equal(n.opens, opens.get(ino) ?? 0, `handles on ${ino}`);
    if (ino !== ROOT) {
      assert.ok(n.refs > 0 || n.kids > 0 || n.opens > 0, `node ${ino} is held by nothing`);
    }
  }
}

Deno.test("journal replay: lookups, forgets and handles give the table the kernel holds; a torn last line is dropped", () => {
  const text = [
    '{"t":"init","init":{"major":7,"minor":41,"flags":"0x1234","maxWrite":1048576,"maxReadahead":131072,"timeGran":1}}',
    '{"t":"node","ino":2,"parent":1,"name":"dir","kind":"dir"}', // LOOKUP dir
    '{"t":"ref","ino":2,"n":1}',
    '{"t":"node","ino":3,"parent":2,"name":"a.txt","kind":"file"}', // LOOKUP dir/a.txt, twice
    '{"t":"ref","ino":3,"n":2}',
    '{"t":"open","fh":7,"ino":3,"flags":0,"etag":"\\"e1\\""}', // OPEN dir/a.txt
    '{"t":"forget","ino":2,"n":1}', // dir is forgotten, but a.txt below it is held
    '{"t":"forget","ino":3,"n":2}', // a.txt forgotten, still open
    '{"t":"node","ino":4,"parent":1,"name":"b","ki', // torn: the server died here
  ].join("\n");
  const s = replay(text);
  assert.deepEqual(s.init, INIT);
  assert.deepEqual([...s.nodes.keys()].sort(), [1, 2, 3]);
  assert.equal(s.nodes.get(3)!.refs, 0);
  assert.deepEqual(s.handles.get(7), { ino: 3, flags: 0, etag: '"e1"' });
  assert.equal(s.maxIno, 3);
  assertConsistent(s);
  // The release lets go of a.txt, and then of dir, which only a.txt kept.
  const after = replay(text.slice(0, text.lastIndexOf("\n")) + '\n{"t":"release","fh":7}\n');
  assert.deepEqual([...after.nodes.keys()], [ROOT]);
  assert.equal(after.maxFh, 7, "a handle number is never handed out twice");
});

Deno.test("journal replay: records about nodes or handles it does not hold change nothing", () => {
  const s = replay([
    '{"t":"node","ino":5,"parent":9,"name":"orphan","kind":"file"}', // parent never recorded
    '{"t":"ref","ino":5,"n":1}',
    '{"t":"open","fh":1,"ino":5,"flags":0}',
    '{"t":"release","fh":2}',
    '{"t":"forget","ino":1,"n":1}', // the root is never forgotten
  ].join("\n"));
  assert.deepEqual([...s.nodes.keys()], [ROOT]);
  assert.equal(s.handles.size, 0);
});

/** A random session: the kernel looks names up, forgets them, opens and releases handles. */
function session(journal: Journal, steps: number, seed: number): Map<number, number> {
  let x = seed;
  const rand = (n: number) => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % n;
  };
  // The reference model: what the kernel holds, kept without the journal's rules.
  const refs = new Map<number, number>([[ROOT, 0]]);
  const dirs = [ROOT];
  const handles = new Map<number, number>();
  let nextIno = 2;
  let nextFh = 1;
  for (let i = 0; i < steps; i++) {
    const op = rand(10);
    const held = [...refs.keys()].filter((ino) => ino !== ROOT && refs.get(ino)! > 0);
    if (op < 4 || held.length === 0) {
      const parent = dirs[rand(dirs.length)];
      if (parent !== ROOT && !(refs.get(parent)! > 0)) continue; // the kernel looks up under what it holds
      const ino = nextIno++;
      const kind = rand(3) === 0 ? "dir" : "file";
      journal.record({ t: "node", ino, parent, name: `n${ino}`, kind });
      journal.record({ t: "ref", ino, n: 1 });
      refs.set(ino, 1);
      if (kind === "dir") dirs.push(ino);
    } else if (op < 5) {
      const ino = held[rand(held.length)];
      journal.record({ t: "ref", ino, n: 1 });
      refs.set(ino, refs.get(ino)! + 1);
    } else if (op < 7) {
      const ino = held[rand(held.length)];
      const n = 1 + rand(refs.get(ino)!);
      journal.record({ t: "forget", ino, n });
      refs.set(ino, refs.get(ino)! - n);
    } else if (op < 8) {
      const ino = held[rand(held.length)];
      const fh = nextFh++;
      journal.record({ t: "open", fh, ino, flags: rand(2) });
      handles.set(fh, ino);
    } else if (handles.size > 0) {
      const fh = [...handles.keys()][rand(handles.size)];
      journal.record({ t: "release", fh });
      handles.delete(fh);
    }
    if (rand(4) === 0) journal.flush();
  }
  journal.flush();
  return new Map([...refs].filter(([ino, n]) => ino !== ROOT && n > 0));
}

Deno.test("journal property: any prefix of a journal, cut at any byte, replays to a consistent table", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const sink = new MemorySink();
    const journal = new Journal(sink);
    journal.record({ t: "init", init: INIT });
    const held = session(journal, 400, seed);
    for (let cut = 0; cut <= sink.text.length; cut += 1 + (cut % 37)) {
      assertConsistent(replay(sink.text.slice(0, cut)));
    }
    const full = replay(sink.text);
    assertConsistent(full);
    // The whole journal gives back exactly what the kernel holds, and what the writer has.
    for (const [ino, n] of held) {
      assert.equal(full.nodes.get(ino)?.refs, n, `refs of ${ino} (seed ${seed})`);
    }
    assert.deepEqual(full.nodes, journal.state.nodes);
    assert.deepEqual(full.handles, journal.state.handles);
  }
});

Deno.test("journal property: the file stays bounded by what is held, however long the session", () => {
  const sink = new MemorySink();
  const journal = new Journal(sink);
  session(journal, 100_000, 7);
  const live = journal.state.nodes.size + journal.state.handles.size;
  assert.ok(sink.replaced > 1, "it compacted");
  const lines = sink.text.split("\n").length - 1;
  assert.equal(lines, journal.lines);
  assert.ok(
    lines <= Math.max(COMPACT_MIN_LINES, 4 * live) + 100,
    `${lines} lines for ${live} live entries`,
  );
  assert.deepEqual(replay(sink.text).nodes, journal.state.nodes);
});

Deno.test("journal FileSink: a replacement replays the file, starts it afresh from its snapshot and goes on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-journal-" });
  try {
    const path = `${dir}/journal`;
    const first = new FileSink(path);
    const a = new Journal(first);
    session(a, 2000, 3);
    first.close(); // the server dies; its file is all that is left
    const replayed = replay(await Deno.readTextFile(path));
    assert.deepEqual(replayed.nodes, a.state.nodes);
    const second = new FileSink(path);
    const b = new Journal(second, replayed);
    const ino = replayed.maxIno + 1;
    const before = replayed.nodes.size; // b's state is the replayed one, and grows
    b.record({ t: "node", ino, parent: ROOT, name: "new", kind: "file" });
    b.record({ t: "ref", ino, n: 1 });
    b.flush();
    second.close();
    const again = replay(await Deno.readTextFile(path));
    assert.equal(again.nodes.get(ino)?.name, "new");
    assert.equal(again.nodes.size, before + 1);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
