/**
 * Reference-model property test of the file system core: random sequences
 * of file operations and of changes made to the bucket by another client,
 * checked after every step against `materialize(model)` by walking the whole
 * mount (readdir or readdirplus, then a lookup of every entry).
 *
 * Names come from a tiny alphabet (with "-" and "." to stress name-order
 * versus S3-order, and rare "", "." and ".." components in remote keys) so
 * that operations collide. Selectors are indices taken modulo the current
 * candidates, so every generated command is valid. Counterexamples found
 * along the way are pinned as named regression tests below.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  Errno,
  type Ino,
  O_RDONLY,
  O_WRONLY,
  ROOT_INO,
  type S3FileSystem,
  S_IFDIR,
  S_IFREG,
} from "../../internal/fs/mod.ts";
import { BUCKET, ctx, dec, enc, errnoOf, listIno, mount } from "../../internal/fs/testing.ts";
import type { MemoryObjectClient } from "../../internal/s3/memory_object_client.ts";
import {
  compareNames,
  describe,
  directories,
  files,
  join,
  materialize,
  Model,
  type Tree,
} from "./model.ts";
import { setLevel } from "../../internal/log/mod.ts";

export type Cmd =
  | { op: "put"; comps: string[]; marker: boolean; content: string }
  | { op: "delete"; sel: number }
  | { op: "create"; dir: number; name: string; content: string }
  | { op: "close"; sel: number }
  | { op: "append"; sel: number; content: string; badOffset: boolean }
  | { op: "read"; sel: number }
  | { op: "unlink"; sel: number }
  | { op: "mkdir"; dir: number; name: string }
  | { op: "rmdir"; sel: number };

const SEED = 20261122;
const NUM_RUNS = 400;

const name = fc.constantFrom("a", "b", "aa", "ab", "a-", "a.b");
const comp = fc.oneof(
  { weight: 12, arbitrary: name },
  { weight: 1, arbitrary: fc.constantFrom("", ".", "..") },
);
const content = fc.constantFrom("", "x", "hello", "0123456789");
const sel = fc.nat(1000);

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      comps: fc.array(comp, { minLength: 1, maxLength: 3 }),
      marker: fc.boolean(),
      content,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), sel }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("create" as const), dir: sel, name, content }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("close" as const), sel }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("append" as const),
      sel,
      content: fc.constantFrom("y", "abcdefg"),
      // Mostly sequential; sometimes a wrong offset, which aborts the upload.
      badOffset: fc.boolean().chain((b) => (b ? fc.boolean() : fc.constant(false))),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("read" as const), sel }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("unlink" as const), sel }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("mkdir" as const), dir: sel, name }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("rmdir" as const), sel }) },
);

interface Writer {
  ino: Ino;
  fh: number;
}

/** Runs commands against a fresh mount and the model, comparing after every step. */
export class Harness {
  readonly model = new Model();
  readonly writers = new Map<string, Writer>();
  step = 0;

  private constructor(
    readonly fs: S3FileSystem,
    readonly client: MemoryObjectClient,
    readonly prefix: string,
  ) {}

  static async create(prefix = ""): Promise<Harness> {
    // Tiny parts, so even these small files go through multipart uploads.
    const { fs, client } = await mount({ allowDelete: true, writePartSize: 4, prefix });
    if (prefix !== "") {
      // Keys beside the prefix must stay invisible.
      await client.putObject(BUCKET, "outside", enc("no"));
      await client.putObject(BUCKET, prefix.slice(0, -1), enc("no"));
    }
    return new Harness(fs, client, prefix);
  }

  /** Resolves a path (lookup per component); returns the inode and the references to forget. */
  async resolve(path: string): Promise<{ ino: Ino; refs: Ino[] }> {
    let ino = ROOT_INO;
    const refs: Ino[] = [];
    for (const part of path === "" ? [] : path.split("/")) {
      ino = (await this.fs.lookup(ctx(), ino, part)).ino;
      refs.push(ino);
    }
    return { ino, refs };
  }

  forget(refs: Ino[]): void {
    for (const r of refs) this.fs.forget(r, 1);
  }

  async run(c: Cmd): Promise<void> {
    const m = this.model;
    const tree = materialize(m);
    switch (c.op) {
      case "put": {
        const key = c.comps.join("/") + (c.marker ? "/" : "");
        if (key === "") return;
        await this.client.putObject(BUCKET, this.prefix + key, enc(c.content));
        m.keys.set(key, c.content);
        return;
      }
      case "delete": {
        const keys = [...m.keys.keys()].sort(compareNames);
        if (keys.length === 0) return;
        const key = keys[c.sel % keys.length]!;
        await this.client.deleteObject(BUCKET, this.prefix + key);
        m.keys.delete(key);
        return;
      }
      case "create": {
        const dirs = directories(tree);
        const parent = dirs[c.dir % dirs.length]!;
        const path = join(parent, c.name);
        const { ino: pino, refs } = await this.resolve(parent);
        try {
          const expected = tree.has(path) ? Errno.EEXIST : 0;
          let entryIno = 0;
          const got = await errnoOf(
            this.fs.mknod(ctx(), pino, c.name, S_IFREG | 0o644, 0).then((e) => {
              entryIno = e.ino;
            }),
          );
          assert.equal(got, expected, `mknod ${path}`);
          if (got !== 0) return;
          const { fh } = await this.fs.open(ctx(), entryIno, O_WRONLY);
          if (c.content.length > 0) await this.fs.write(ctx(), entryIno, fh, 0, enc(c.content));
          this.writers.set(path, { ino: entryIno, fh });
          m.writers.set(path, c.content);
        } finally {
          this.forget(refs);
        }
        return;
      }
      case "close": {
        const paths = [...m.writers.keys()].sort(compareNames);
        if (paths.length === 0) return;
        const path = paths[c.sel % paths.length]!;
        const data = m.writers.get(path)!;
        const w = this.writers.get(path)!;
        const conflict = m.keys.has(path);
        const expected = conflict && data.length > 0 ? Errno.EEXIST : 0;
        assert.equal(await errnoOf(this.fs.flush(ctx(), w.ino, w.fh)), expected, `close ${path}`);
        await this.fs.release(ctx(), w.ino, w.fh, 0);
        this.fs.forget(w.ino, 1);
        this.writers.delete(path);
        m.writers.delete(path);
        if (!conflict) m.uploaded(path, data);
        return;
      }
      case "append": {
        const paths = [...m.writers.keys()].sort(compareNames);
        if (paths.length === 0) return;
        const path = paths[c.sel % paths.length]!;
        const data = m.writers.get(path)!;
        const w = this.writers.get(path)!;
        const offset = c.badOffset ? data.length + 1 : data.length;
        const got = await errnoOf(this.fs.write(ctx(), w.ino, w.fh, offset, enc(c.content)));
        assert.equal(got, c.badOffset ? Errno.EINVAL : 0, `write ${path} at ${offset}`);
        if (c.badOffset) {
          // The upload is aborted and the file disappears.
          assert.equal(await errnoOf(this.fs.flush(ctx(), w.ino, w.fh)), Errno.EINVAL);
          await this.fs.release(ctx(), w.ino, w.fh, 0);
          this.fs.forget(w.ino, 1);
          this.writers.delete(path);
          m.writers.delete(path);
        } else {
          m.writers.set(path, data + c.content);
        }
        return;
      }
      case "read": {
        const all = files(tree);
        if (all.length === 0) return;
        const path = all[c.sel % all.length]!;
        const node = tree.get(path)!;
        const { ino, refs } = await this.resolve(path);
        try {
          if (node.kind === "file" && node.local) {
            assert.equal(await errnoOf(this.fs.open(ctx(), ino, O_RDONLY)), Errno.EPERM);
            return;
          }
          const { fh } = await this.fs.open(ctx(), ino, O_RDONLY);
          // Decoded at once: read() returns views of buffers the file system reuses once we yield.
          const data = dec(await this.fs.read(ctx(), ino, fh, 0, 1000));
          await this.fs.release(ctx(), ino, fh, 0);
          assert.equal(data, m.keys.get(path), `read ${path}`);
        } finally {
          this.forget(refs);
        }
        return;
      }
      case "unlink": {
        const all = files(tree);
        if (all.length === 0) return;
        const path = all[c.sel % all.length]!;
        const node = tree.get(path)!;
        const slash = path.lastIndexOf("/");
        const { ino: pino, refs } = await this.resolve(path.slice(0, Math.max(0, slash)));
        try {
          const expected = node.kind === "file" && node.local ? Errno.EPERM : 0;
          const got = await errnoOf(this.fs.unlink(ctx(), pino, path.slice(slash + 1)));
          assert.equal(got, expected, `unlink ${path}`);
          if (got === 0) m.keys.delete(path);
        } finally {
          this.forget(refs);
        }
        return;
      }
      case "mkdir": {
        const dirs = directories(tree);
        const parent = dirs[c.dir % dirs.length]!;
        const path = join(parent, c.name);
        const { ino: pino, refs } = await this.resolve(parent);
        try {
          const expected = tree.has(path) ? Errno.EEXIST : 0;
          let made = 0;
          const got = await errnoOf(
            this.fs.mkdir(ctx(), pino, c.name, 0o755, 0).then((e) => {
              made = e.ino;
            }),
          );
          assert.equal(got, expected, `mkdir ${path}`);
          if (got === 0) {
            this.fs.forget(made, 1);
            m.localDirs.add(path);
          }
        } finally {
          this.forget(refs);
        }
        return;
      }
      case "rmdir": {
        const dirs = directories(tree).filter((d) => d !== "");
        if (dirs.length === 0) return;
        const path = dirs[c.sel % dirs.length]!;
        const slash = path.lastIndexOf("/");
        const { ino: pino, refs } = await this.resolve(path.slice(0, Math.max(0, slash)));
        try {
          const outcome = m.rmdirOutcome(path);
          const got = await errnoOf(this.fs.rmdir(ctx(), pino, path.slice(slash + 1)));
          assert.equal(got, outcome.notEmpty ? Errno.ENOTEMPTY : 0, `rmdir ${path}`);
          if (!outcome.notEmpty) {
            if (outcome.marker) m.keys.delete(path + "/");
            m.localDirs.delete(path);
          }
        } finally {
          this.forget(refs);
        }
        return;
      }
    }
  }

  /** Walks the whole mount and compares it with the model. */
  async check(): Promise<void> {
    const seen: Tree = new Map();
    await this.#walk(ROOT_INO, "", seen, this.step % 2 === 1);
    assert.deepEqual(describe(seen), describe(materialize(this.model)), `after step ${this.step}`);
    this.step++;
  }

  async #walk(ino: Ino, path: string, out: Tree, plus: boolean): Promise<void> {
    const entries = await listIno(this.fs, ino, { plus, perCall: 3 });
    const listed = entries.map((e) => e.name);
    assert.deepEqual(listed, [...listed].sort(compareNames), `readdir of "${path}" is sorted`);
    assert.equal(new Set(listed).size, listed.length, `readdir of "${path}" has no duplicates`);
    for (const e of entries) {
      const p = join(path, e.name);
      const entry = await this.fs.lookup(ctx(), ino, e.name);
      const isDir = (entry.attr.mode & S_IFDIR) === S_IFDIR;
      assert.equal(isDir, e.dir, `readdir and lookup agree on the kind of "${p}"`);
      if (isDir) {
        out.set(p, { kind: "dir" });
        await this.#walk(entry.ino, p, out, plus);
      } else {
        out.set(p, { kind: "file", size: entry.attr.size, local: false });
      }
      this.fs.forget(entry.ino, 1);
    }
  }

  /** Closes every writer; afterwards nothing may be pending. */
  async finish(): Promise<void> {
    for (const [path, w] of this.writers) {
      await this.fs.flush(ctx(), w.ino, w.fh).catch(() => {});
      await this.fs.release(ctx(), w.ino, w.fh, 0);
      this.fs.forget(w.ino, 1);
      this.model.writers.delete(path);
    }
    this.writers.clear();
    assert.equal(this.fs.handleCount, 0);
    assert.deepEqual(this.client.pendingUploads(), []);
  }
}

export async function runCommands(cmds: Cmd[], prefix = ""): Promise<void> {
  const h = await Harness.create(prefix);
  await h.check();
  for (const c of cmds) {
    await h.run(c);
    await h.check();
  }
  await h.finish();
}

export const commands = fc.array(cmd, { minLength: 5, maxLength: 40, size: "max" });

async function quietly(fn: () => Promise<void>): Promise<void> {
  // Expected upload failures would otherwise flood the output.
  setLevel("error");
  try {
    await fn();
  } finally {
    setLevel("info");
  }
}

Deno.test("S3FileSystem matches the reference model under random operations and remote changes", () =>
  quietly(() =>
    fc.assert(fc.asyncProperty(commands, (cmds) => runCommands(cmds)), {
      seed: SEED,
      numRuns: NUM_RUNS,
    })
  ));

Deno.test("S3FileSystem with a prefix matches the reference model", () =>
  quietly(() =>
    fc.assert(fc.asyncProperty(commands, (cmds) => runCommands(cmds, "p/")), {
      seed: SEED + 1,
      numRuns: Math.ceil(NUM_RUNS / 3),
    })
  ));

// ---- Regressions: sequences worth keeping as fixed cases --------------------------

Deno.test("regression: a file being written reappears when the remote directory shadowing it goes away", () =>
  runCommands([
    { op: "create", dir: 0, name: "a-", content: "hello" },
    { op: "put", comps: ["a-", "x"], marker: false, content: "x" },
    { op: "delete", sel: 0 },
    { op: "append", sel: 0, content: "y", badOffset: false },
    { op: "close", sel: 0 },
  ]));

Deno.test("regression: closing a file whose key another client created keeps theirs", () =>
  runCommands([
    { op: "mkdir", dir: 0, name: "b" },
    { op: "create", dir: 1, name: "a", content: "hello" },
    { op: "put", comps: ["b", "a"], marker: false, content: "0123456789" },
    { op: "close", sel: 0 },
    { op: "read", sel: 0 },
  ]));

Deno.test("regression: an out-of-order write removes the file and its mkdir parent stays local", () =>
  runCommands([
    { op: "mkdir", dir: 0, name: "b" },
    { op: "create", dir: 1, name: "aa", content: "0123456789" },
    { op: "append", sel: 0, content: "abcdefg", badOffset: true },
    { op: "rmdir", sel: 0 },
  ]));
