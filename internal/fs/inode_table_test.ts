// The inode table, through S3FileSystem: what forget() lets go of.
import assert from "node:assert/strict";
import { O_SYNC, O_WRONLY, ROOT_INO, S_IFREG } from "./api.ts";
import { BUCKET, ctx, dec, enc, Errno, errnoOf, listDir, mount, names, put } from "./testing.ts";

Deno.test("forget() drops inodes the kernel no longer holds", async () => {
  const { fs, client } = await mount();
  for (let i = 0; i < 50; i++) await put(client, `d/f${i}`);
  const before = fs.inodeCount;
  await listDir(fs, "d", { plus: true, perCall: 9 });
  const d = await fs.lookup(ctx(), ROOT_INO, "d");
  // listDir forgets what readdirplus handed out; resolve() keeps "d" (twice).
  assert.equal(fs.inodeCount, before + 1);
  fs.forget(d.ino, 2);
  assert.equal(fs.inodeCount, before);
});

Deno.test("forget() drops a created file that was never opened, so a refused CREATE leaves nothing", async () => {
  const { fs, client } = await mount();
  const f = await fs.mknod(ctx(), ROOT_INO, "sync", S_IFREG | 0o644, 0);
  // The open after mknod is refused (O_SYNC): the session rolls back with forget.
  assert.equal(await errnoOf(fs.open(ctx(), f.ino, O_WRONLY | O_SYNC)), Errno.EINVAL);
  fs.forget(f.ino, 1);
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "sync")), Errno.ENOENT);
  assert.deepEqual(names(await listDir(fs, "")), []);
  assert.equal(client.peek(BUCKET, "sync"), undefined);
  // A created file the kernel still knows stays, and one being written survives a forget.
  const g = await fs.mknod(ctx(), ROOT_INO, "g", S_IFREG | 0o644, 0);
  const { fh } = await fs.open(ctx(), g.ino, O_WRONLY);
  fs.forget(g.ino, 1);
  await fs.write(ctx(), g.ino, fh, 0, enc("kept"));
  await fs.flush(ctx(), g.ino, fh);
  await fs.release(ctx(), g.ino, fh, 0);
  assert.equal(dec(client.peek(BUCKET, "g")!), "kept");
});
