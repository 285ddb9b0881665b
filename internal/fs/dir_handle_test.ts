// Directory handles, through S3FileSystem: readdir cookies, references and long listings.
import assert from "node:assert/strict";
import { type DirEntry, ROOT_INO } from "./api.ts";
import { BUCKET, ctx, listDir, mount, names, put } from "./testing.ts";

Deno.test("readdir() with plus adds a reference only for entries add() accepts", async () => {
  const { fs, client } = await mount();
  await put(client, "a");
  await put(client, "b");
  const { fh } = await fs.opendir(ctx(), ROOT_INO, 0);
  const got: DirEntry[] = [];
  await fs.readdir(
    ctx(),
    ROOT_INO,
    fh,
    0,
    true,
    (e) => got.length < 3 ? (got.push(e), true) : false,
  );
  assert.deepEqual(got.map((e) => e.name), [".", "..", "a"]);
  assert.equal(fs.inodeCount, 2); // root + "a"
  await fs.readdir(ctx(), ROOT_INO, fh, got[2]!.nextOffset, true, (e) => (got.push(e), true));
  assert.deepEqual(got.map((e) => e.name), [".", "..", "a", "b"]);
  // Re-reading from an earlier cookie serves the same entries again.
  const again: string[] = [];
  await fs.readdir(
    ctx(),
    ROOT_INO,
    fh,
    got[1]!.nextOffset,
    false,
    (e) => (again.push(e.name), true),
  );
  assert.deepEqual(again, ["a", "b"]);
  await fs.releasedir(ctx(), ROOT_INO, fh);
  fs.forget(got[2]!.ino, 1);
  fs.forget(got[3]!.ino, 1);
  assert.equal(fs.inodeCount, 1);
});

Deno.test("readdir() lists 100,000 entries sorted across pages", async () => {
  const { fs, client } = await mount();
  const n = 100_000;
  const all: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `f${String(i).padStart(6, "0")}${i % 10 === 0 ? "-x" : ""}`;
    all.push(name);
    await put(client, `big/${name}`);
  }
  for (let i = 0; i < 100; i++) await put(client, `big/f${String(i * 1000).padStart(6, "0")}/sub`);
  const listed = await listDir(fs, "big", { perCall: 500 });
  assert.equal(listed.length, n + 100);
  const sorted = [...listed.map((e) => e.name)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  assert.deepEqual(listed.map((e) => e.name), sorted);
  assert.equal(new Set(listed.map((e) => e.name)).size, listed.length);
});

Deno.test("readdir() survives entries added and removed during the listing", async () => {
  const { fs, client } = await mount();
  for (let i = 0; i < 30; i++) await put(client, `k${String(i).padStart(2, "0")}`);
  const ino = ROOT_INO;
  const { fh } = await fs.opendir(ctx(), ino, 0);
  const seen: string[] = [];
  let offset = 0;
  let round = 0;
  for (;;) {
    const batch: DirEntry[] = [];
    await fs.readdir(
      ctx(),
      ino,
      fh,
      offset,
      false,
      (e) => batch.length < 4 ? (batch.push(e), true) : false,
    );
    if (batch.length === 0) break;
    seen.push(...batch.map((e) => e.name));
    offset = batch.at(-1)!.nextOffset;
    round++;
    await put(client, `k${String(round).padStart(2, "0")}x`); // behind and ahead of the cursor
    await client.deleteObject(BUCKET, `k${String(29 - round).padStart(2, "0")}`);
  }
  await fs.releasedir(ctx(), ino, fh);
  const entries = seen.filter((s) => s !== "." && s !== "..");
  assert.equal(new Set(entries).size, entries.length);
  assert.deepEqual(entries, [...entries].sort());
  assert.ok(entries.includes("k00"));
});

Deno.test("readdir() in a directory with many names blocked on a later prefix probes instead of buffering", async () => {
  const { fs, client } = await mount();
  for (let i = 0; i < 2500; i++) await put(client, `p/a-${String(i).padStart(4, "0")}`);
  await put(client, "p/a/inner");
  await put(client, "p/a");
  const listed = names(await listDir(fs, "p", { perCall: 100 }));
  assert.equal(listed[0], "a/");
  assert.equal(listed.length, 2501);
  assert.equal(listed.filter((n) => n.startsWith("a/") || n === "a").length, 1);
});
