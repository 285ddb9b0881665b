/**
 * Operations S3 cannot do efficiently are refused early with the errno
 * SEMANTICS.md documents, both as the error a system call returns (through
 * Deno's file APIs) and as the text users see from the standard tools.
 * Nothing a refused operation touches changes in S3.
 */
import assert from "node:assert/strict";
import { canMount, errnoOf, fails, have, ok, run, withEnv } from "./harness.ts";

const enc = new TextEncoder();

Deno.test({
  name: "s3csi mount refuses rename, links, chmod, chown, utimes and truncate with their errno",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      await env.s3.putObject(env.bucket, "f", enc.encode("hello"));
      await env.s3.putObject(env.bucket, "d/g", enc.encode("g"));
      const m = await env.mount();
      const f = `${m.dir}/f`;

      // rename: EXDEV, so mv falls back to copy + unlink, and unlink needs --allow-delete.
      assert.equal(await errnoOf(Deno.rename(f, `${m.dir}/f2`)), "EXDEV");
      assert.equal(await errnoOf(Deno.rename(`${m.dir}/d`, `${m.dir}/d2`)), "EXDEV");
      assert.match(await fails("mv", [f, `${m.dir}/f3`]), /cannot remove.*Operation not permitted/);
      assert.ok(await env.s3.headObject(env.bucket, "f"), "the source of a failed mv stays");
      assert.equal(await Deno.readTextFile(`${m.dir}/f3`), "hello", "mv copied before unlinking");

      assert.equal(await errnoOf(Deno.symlink("f", `${m.dir}/sym`)), "EPERM");
      assert.match(await fails("ln", ["-s", "f", `${m.dir}/sym`]), /Operation not permitted/);
      assert.equal(await errnoOf(Deno.link(f, `${m.dir}/hard`)), "EPERM");
      assert.match(await fails("ln", [f, `${m.dir}/hard`]), /Operation not permitted/);

      assert.equal(await errnoOf(Deno.chmod(f, 0o600)), "EPERM");
      assert.match(await fails("chmod", ["600", f]), /Operation not permitted/);
      await ok("chmod", ["644", f]); // the current mode: a no-op
      assert.equal(await errnoOf(Deno.chown(f, 1000, 1000)), "EPERM");
      assert.match(await fails("chown", ["1000:1000", f]), /Operation not permitted/);
      await ok("chown", ["0:0", f]); // the current owner (the mounting user, root)
      assert.match(await fails("touch", ["-d", "@0", f]), /Operation not permitted/);

      assert.equal(await errnoOf(Deno.truncate(f, 1)), "EPERM");
      assert.match(await fails("truncate", ["-s", "1", f]), /Operation not permitted/);
      assert.match(await fails("mkfifo", [`${m.dir}/fifo`]), /Invalid argument/);

      const st = await Deno.stat(f);
      assert.equal(st.size, 5);
      assert.equal(st.mode! & 0o7777, 0o644);
      assert.equal(await Deno.readTextFile(f), "hello");
      const keys = (await env.s3.listObjects(env.bucket)).objects.map((o) => o.key).sort();
      assert.deepEqual(keys, ["d/g", "f", "f3"], "only mv's copy was created");
    }),
});

Deno.test({
  name: "s3csi mount fails out-of-order and O_SYNC writes with EINVAL and creates no object",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const m = await env.mount();
      const dd = await run("dd", [
        "if=/dev/zero",
        `of=${m.dir}/seek`,
        "bs=1k",
        "count=1",
        "seek=3",
      ]);
      assert.notEqual(dd.code, 0);
      assert.match(dd.stderr, /Invalid argument|Operation not permitted/);

      // The same through the system calls: a write at a gap aborts the upload (S11).
      const file = await Deno.open(`${m.dir}/gap`, { write: true, createNew: true });
      assert.equal(await file.write(new Uint8Array(4096).fill(7)), 4096);
      await file.seek(64 * 1024, Deno.SeekMode.Start);
      assert.equal(await errnoOf(file.write(new Uint8Array(10))), "EINVAL");
      assert.equal(await errnoOf(file.write(new Uint8Array(10))), "EINVAL", "the handle is dead");
      try {
        file.close();
      } catch (err) {
        assert.match(String(err), /os error 22/, "close reports the aborted upload");
      }

      const sync = await run("dd", ["if=/dev/zero", `of=${m.dir}/sync`, "count=1", "oflag=sync"]);
      assert.notEqual(sync.code, 0);
      assert.match(sync.stderr, /Invalid argument/);

      assert.deepEqual((await env.s3.listObjects(env.bucket)).objects, []);
      // (A create refused for O_SYNC leaves a local empty "sync" entry behind: not asserted.)
      const names = (await ok("ls", ["-A", m.dir])).trim().split("\n");
      assert.ok(!names.includes("seek") && !names.includes("gap"), "aborted files vanish");
    }),
});

Deno.test({
  name: "s3csi mount answers extended attributes with EOPNOTSUPP",
  ignore: !canMount,
  fn: async (t) => {
    // setfattr (package attr) when installed, else Python's os.setxattr: both are the raw syscall.
    const tool = (await have("setfattr")) ? "setfattr" : (await have("python3")) ? "python3" : null;
    if (!tool) {
      await t.step({
        name: "skipped: neither setfattr (package attr) nor python3 is installed",
        ignore: true,
        fn: () => {},
      });
      return;
    }
    await withEnv(async (env) => {
      await env.s3.putObject(env.bucket, "f", enc.encode("x"));
      const m = await env.mount();
      const f = `${m.dir}/f`;
      const set = tool === "setfattr"
        ? await run("setfattr", ["-n", "user.k", "-v", "v", f])
        : await run("python3", [
          "-c",
          `import os,sys; os.setxattr(sys.argv[1], "user.k", b"v")`,
          f,
        ]);
      assert.notEqual(set.code, 0);
      assert.match(set.stderr, /Operation not supported/);
      const get = tool === "setfattr"
        ? await run("getfattr", ["-n", "user.k", f])
        : await run("python3", ["-c", `import os,sys; os.getxattr(sys.argv[1], "user.k")`, f]);
      assert.notEqual(get.code, 0);
      assert.match(get.stderr, /Operation not supported/);
    });
  },
});

Deno.test({
  name: "s3csi mount --read-only fails every change with EROFS and still reads",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      await env.s3.putObject(env.bucket, "d/f", enc.encode("read me"));
      const m = await env.mount(["--read-only", "--allow-delete", "--allow-overwrite"]);
      assert.equal(await Deno.readTextFile(`${m.dir}/d/f`), "read me");
      assert.equal(await errnoOf(Deno.writeTextFile(`${m.dir}/new`, "x")), "EROFS");
      assert.equal(await errnoOf(Deno.writeTextFile(`${m.dir}/d/f`, "x")), "EROFS");
      assert.equal(await errnoOf(Deno.mkdir(`${m.dir}/dir`)), "EROFS");
      assert.equal(await errnoOf(Deno.remove(`${m.dir}/d/f`)), "EROFS");
      assert.equal(await errnoOf(Deno.rename(`${m.dir}/d/f`, `${m.dir}/g`)), "EROFS");
      const src = `${env.work}/src`;
      await Deno.writeTextFile(src, "data");
      assert.match(await fails("cp", [src, `${m.dir}/copy`]), /Read-only file system/);
      assert.match(await fails("rm", [`${m.dir}/d/f`]), /Read-only file system/);
      assert.match(await fails("mkdir", [`${m.dir}/x`]), /Read-only file system/);
      assert.match(await fails("touch", [`${m.dir}/t`]), /Read-only file system/);
      const keys = (await env.s3.listObjects(env.bucket)).objects.map((o) => o.key);
      assert.deepEqual(keys, ["d/f"]);
    }),
});
