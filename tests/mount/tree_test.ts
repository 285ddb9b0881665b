/**
 * The directory tree a real mount shows for keys created in S3 (SEMANTICS.md
 * S1–S3), seen with `ls -l`, `find` and `stat`; local directories (`mkdir`,
 * `rmdir`); and the `--allow-delete` / `--allow-overwrite` switches with the
 * error texts users see from `rm`, `cp` and shell redirections.
 */
import assert from "node:assert/strict";
import { canMount, type Env, errnoOf, fails, ok, run, withEnv } from "./harness.ts";
import { startPhantomS3 } from "./phantom_s3.ts";

const enc = new TextEncoder();

/** Keys of the test tree and their contents. */
const TREE: Record<string, string> = {
  "a/b/c.txt": "hello",
  "a/d.txt": "d",
  "m/": "", // a console-style directory marker
  "z": "zz",
};

async function putTree(env: Env): Promise<void> {
  await Promise.all(
    Object.entries(TREE).map(([k, v]) => env.s3.putObject(env.bucket, k, enc.encode(v))),
  );
}

/** `ls -l` lines as name → first column (type and mode) and size. */
async function lsl(dir: string): Promise<Map<string, { mode: string; size: number }>> {
  const out = await ok("ls", ["-l", dir]);
  const entries = new Map<string, { mode: string; size: number }>();
  for (const line of out.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 9) entries.set(f.slice(8).join(" "), { mode: f[0], size: Number(f[4]) });
  }
  return entries;
}

/** Polls until `check` holds (the kernel caches entries for up to 1 s), up to 5 s. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`never happened: ${what}`);
}

Deno.test({
  name: "s3csi mount shows keys as a tree with ls -l, find and stat (S1)",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      await putTree(env);
      const m = await env.mount();
      const root = await lsl(m.dir);
      assert.deepEqual([...root.keys()].sort(), ["a", "m", "z"]);
      assert.match(root.get("a")!.mode, /^drwxr-xr-x/);
      assert.match(root.get("m")!.mode, /^d/, "the m/ marker is a directory");
      assert.deepEqual(root.get("z"), { mode: "-rw-r--r--", size: 2 });

      const found = (await ok("find", [m.dir])).trim().split("\n")
        .map((p) => p.slice(m.dir.length)).sort();
      assert.deepEqual(found, [
        "",
        "/a",
        "/a/b",
        "/a/b/c.txt",
        "/a/d.txt",
        "/m",
        "/z",
      ]);

      const stat = (p: string) => ok("stat", ["-c", "%F|%s|%a|%u|%g|%h", `${m.dir}/${p}`]);
      assert.equal((await stat("a/b/c.txt")).trim(), "regular file|5|644|0|0|1");
      assert.equal((await stat("a/b")).trim(), "directory|0|755|0|0|2");
      assert.equal((await stat("m")).trim(), "directory|0|755|0|0|2");
      assert.equal(await Deno.readTextFile(`${m.dir}/a/b/c.txt`), "hello");
      assert.equal(await errnoOf(Deno.stat(`${m.dir}/nope`)), "ENOENT");
    }),
});

Deno.test({
  name: "s3csi mount hides keys that are no file names and lets a directory shadow a file (S2, S3)",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      for (const [k, v] of [["z", "zz"], ["w/v", "v"], ["blue", "shadowed file"]]) {
        await env.s3.putObject(env.bucket, k, enc.encode(v));
      }
      // Keys MinIO cannot store: the proxy adds them to every listing, as real S3 would show them.
      const proxy = startPhantomS3(env.minio.endpoint);
      const long = "n".repeat(256);
      for (const k of ["x/./y", "x/../y", "x//y", `x/${long}`, `w/${long}/q`, "w/nul\0name"]) {
        proxy.phantoms.add(k);
      }
      proxy.phantoms.add("blue/image.jpg");
      try {
        const m = await env.mount([], { endpoint: proxy.endpoint });
        const root = await lsl(m.dir);
        assert.deepEqual([...root.keys()].sort(), ["blue", "w", "x", "z"]);
        assert.match(root.get("blue")!.mode, /^d/, "the directory blue shadows the file blue");
        assert.match(root.get("x")!.mode, /^d/, "x is shown although nothing below it is");
        const names = async (p: string) =>
          (await ok("ls", ["-A", `${m.dir}/${p}`])).split("\n").filter(Boolean);
        assert.deepEqual(await names("x"), []);
        assert.deepEqual(await names("w"), ["v"]);
        assert.deepEqual(await names("blue"), ["image.jpg"]);
        const found = (await ok("find", [m.dir])).trim().split("\n")
          .map((p) => p.slice(m.dir.length)).sort();
        assert.deepEqual(found, ["", "/blue", "/blue/image.jpg", "/w", "/w/v", "/x", "/z"]);

        // Deleting the only key below blue/ uncovers the file blue.
        proxy.phantoms.delete("blue/image.jpg");
        await eventually(async () => {
          const st = await Deno.stat(`${m.dir}/blue`).catch(() => null);
          return st?.isFile === true;
        }, "blue becomes a file");
        assert.equal(await Deno.readTextFile(`${m.dir}/blue`), "shadowed file");
      } finally {
        await proxy.close();
      }
    }),
});

Deno.test({
  name: "s3csi mount keeps mkdir local until a file below it is written, rmdir refuses non-empty",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const m = await env.mount();
      await ok("mkdir", [`${m.dir}/empty`]);
      assert.ok((await Deno.stat(`${m.dir}/empty`)).isDirectory);
      assert.deepEqual((await env.s3.listObjects(env.bucket)).objects, [], "mkdir writes nothing");
      await ok("rmdir", [`${m.dir}/empty`]);
      assert.equal(await errnoOf(Deno.stat(`${m.dir}/empty`)), "ENOENT");

      await ok("mkdir", ["-p", `${m.dir}/p/q`]);
      await Deno.writeTextFile(`${m.dir}/p/q/file.txt`, "inside");
      const info = await env.s3.headObject(env.bucket, "p/q/file.txt");
      assert.equal(info?.size, 6, "the file persists its directories implicitly");
      assert.match(await fails("rmdir", [`${m.dir}/p/q`]), /Directory not empty/);
      assert.match(await fails("rmdir", [`${m.dir}/p`]), /Directory not empty/);
      assert.match(await fails("rmdir", [`${m.dir}/p/q/file.txt`]), /Not a directory/);

      // A remote directory made of its marker alone needs --allow-delete to go (S19).
      await env.s3.putObject(env.bucket, "marker/", new Uint8Array());
      assert.match(await fails("rmdir", [`${m.dir}/marker`]), /Operation not permitted/);
      assert.ok(await env.s3.headObject(env.bucket, "marker/"));
      const del = await env.mount(["--allow-delete"]);
      await ok("rmdir", [`${del.dir}/marker`]);
      assert.equal(await env.s3.headObject(env.bucket, "marker/"), null);
    }),
});

Deno.test({
  name: "s3csi mount refuses rm without --allow-delete and deletes the object with it",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      await putTree(env);
      const plain = await env.mount();
      assert.match(await fails("rm", [`${plain.dir}/z`]), /Operation not permitted/);
      assert.match(await fails("rm", ["-f", `${plain.dir}/a/d.txt`]), /Operation not permitted/);
      assert.ok(await env.s3.headObject(env.bucket, "z"), "z is still in S3");

      const del = await env.mount(["--allow-delete"]);
      await ok("rm", [`${del.dir}/z`]);
      assert.equal(await env.s3.headObject(env.bucket, "z"), null);
      assert.equal(await errnoOf(Deno.stat(`${del.dir}/z`)), "ENOENT");
      assert.match(await fails("rm", [`${del.dir}/a`]), /Is a directory/);
      // rm -f: a/b vanishes with its last key, so rm's own rmdir of it finds nothing (ENOENT).
      await ok("rm", ["-rf", `${del.dir}/a`]);
      assert.deepEqual(
        (await env.s3.listObjects(env.bucket, { prefix: "a/" })).objects,
        [],
        "rm -r deletes every key below a/",
      );
      await eventually(async () => !(await lsl(del.dir)).has("a"), "a vanishes");
    }),
});

Deno.test({
  name: "s3csi mount refuses overwrites without --allow-overwrite and replaces the object with it",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      await putTree(env);
      const src = `${env.work}/new.txt`;
      await Deno.writeTextFile(src, "replacement");
      const plain = await env.mount();
      assert.match(await fails("cp", [src, `${plain.dir}/z`]), /Operation not permitted/);
      const append = await run("sh", ["-c", `echo more >> ${plain.dir}/z`]);
      assert.notEqual(append.code, 0, "appending is refused");
      assert.match(append.stderr, /Operation not permitted/);
      assert.equal(new TextDecoder().decode((await env.s3.getObject(env.bucket, "z")).body), "zz");

      const ow = await env.mount(["--allow-overwrite"]);
      await ok("cp", [src, `${ow.dir}/z`]);
      const got = await env.s3.getObject(env.bucket, "z");
      assert.equal(new TextDecoder().decode(got.body), "replacement");
      assert.equal(await Deno.readTextFile(`${ow.dir}/z`), "replacement");
      const append2 = await run("sh", ["-c", `echo more >> ${ow.dir}/z`]);
      assert.notEqual(append2.code, 0, "appending is refused even with --allow-overwrite");
    }),
});
