/**
 * What other S3 clients see, and what a reader sees when other clients
 * change the bucket: an object overwritten during a read fails the read with
 * ESTALE instead of mixing versions (S9); a file written through the mount
 * is invisible in S3 until it is closed (S12); and an upload that is aborted
 * (out-of-order write) or cut short (the mount process dies) leaves no
 * object behind.
 */
import assert from "node:assert/strict";
import { canMount, errnoName, errnoOf, MIB, run, withEnv } from "./harness.ts";

/** `size` bytes, all equal to `fill`: any byte of another version is visible at once. */
function filled(size: number, fill: number): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

Deno.test({
  name: "s3csi mount fails a read with ESTALE after a remote overwrite, never mixing bytes (S9)",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const size = 64 * MIB;
      await env.s3.putObject(env.bucket, "big", filled(size, 1));
      const m = await env.mount();
      const file = await Deno.open(`${m.dir}/big`);
      const buf = new Uint8Array(MIB);
      let pos = 0;
      let failure: string | null = null;
      try {
        while (pos < 2 * MIB) pos += (await file.read(buf))!;
        await env.s3.putObject(env.bucket, "big", filled(size, 2));
        while (true) {
          const n = await file.read(buf);
          if (n === null) break;
          for (let i = 0; i < n; i++) {
            if (buf[i] !== 1) assert.fail(`byte ${pos + i} comes from the new version`);
          }
          pos += n;
        }
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        failure = errnoName(err);
      } finally {
        file.close();
      }
      assert.equal(failure, "ESTALE", `reading on after the overwrite (stopped at ${pos})`);
      assert.ok(pos < size, "the read did not complete");

      // A new open sees the new version.
      const again = await Deno.open(`${m.dir}/big`);
      try {
        const n = (await again.read(buf))!;
        assert.ok(n > 0 && buf.subarray(0, n).every((b) => b === 2));
      } finally {
        again.close();
      }
    }),
});

Deno.test({
  name: "s3csi mount makes a written file visible in S3 only when it is closed (S12)",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const m = await env.mount();
      // One part (a PutObject at close) and several parts (a multipart upload under way). The
      // writer uses the synchronous API so that open, write and close come from one thread.
      for (const size of [MIB, 20 * MIB]) {
        const key = `open-${size}`;
        const file = Deno.openSync(`${m.dir}/${key}`, { write: true, createNew: true });
        try {
          const chunk = filled(MIB, 3);
          for (let done = 0; done < size; done += MIB) {
            let w = 0;
            while (w < MIB) w += file.writeSync(chunk.subarray(w));
          }
          assert.equal(await env.s3.headObject(env.bucket, key), null, `${key} while open`);
          const listed = await env.s3.listObjects(env.bucket, { prefix: key });
          assert.deepEqual(listed.objects, [], `${key} is not listed while open`);
          assert.equal((await Deno.stat(`${m.dir}/${key}`)).size, size, "the mount shows it");
          assert.equal(
            await errnoOf(Deno.readFile(`${m.dir}/${key}`)),
            "EPERM",
            "a file being written cannot be opened for reading (S10)",
          );
        } finally {
          file.close();
        }
        const info = await env.s3.headObject(env.bucket, key);
        assert.equal(info?.size, size, `${key} right after close`);
      }
    }),
});

Deno.test({
  name: "s3csi mount serves a writer whose threads flush dup'd descriptors, uploading at release",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const m = await env.mount();
      // Deno's async file calls run on a thread pool with a dup of the descriptor, so the kernel
      // sends a FLUSH after every write, carrying a pool thread's id. FUSE headers carry thread
      // ids, so those FLUSHes, and the final close from the main thread, are not the opener's:
      // the upload must go on and complete at RELEASE (S13), shortly after close returns.
      const file = await Deno.open(`${m.dir}/threads`, { write: true, createNew: true });
      try {
        for (let i = 0; i < 12; i++) assert.equal(await file.write(filled(MIB, 5)), MIB);
      } finally {
        file.close();
      }
      let info = null;
      for (let i = 0; i < 100 && !info; i++) {
        info = await env.s3.headObject(env.bucket, "threads");
        if (!info) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(info?.size, 12 * MIB, "the object is complete after release");
    }),
});

Deno.test({
  name: "s3csi mount leaves no object when an upload is aborted or the mount dies mid-write",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const m = await env.mount();
      // An out-of-order write after several parts went up aborts the multipart upload.
      const file = await Deno.open(`${m.dir}/aborted`, { write: true, createNew: true });
      const chunk = filled(MIB, 4);
      for (let i = 0; i < 20; i++) await file.write(chunk);
      await file.seek(40 * MIB, Deno.SeekMode.Start);
      assert.equal(await errnoOf(file.write(chunk)), "EINVAL");
      try {
        file.close();
      } catch (err) {
        assert.equal(errnoName(err), "EINVAL", "close reports the aborted upload");
      }
      assert.equal(await env.s3.headObject(env.bucket, "aborted"), null);

      // The mount process dies while a writer holds 20 MiB in an open file.
      const victim = await env.mount();
      const held = await Deno.open(`${victim.dir}/cut`, { write: true, createNew: true });
      for (let i = 0; i < 20; i++) await held.write(chunk);
      Deno.kill(victim.pid, "SIGKILL");
      assert.notEqual(await victim.status, 0);
      try {
        held.close();
      } catch {
        // The connection is gone; close may report it.
      }
      await run("umount", ["-l", victim.dir]);
      assert.equal(await env.s3.headObject(env.bucket, "cut"), null);
      assert.deepEqual((await env.s3.listObjects(env.bucket)).objects, []);
    }),
});
