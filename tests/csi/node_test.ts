/**
 * The node role against a real MinIO and the real kernel FUSE, driven over
 * gRPC the way kubelet drives it (targets under <kubelet>/pods/<uid>/...).
 */
import assert from "node:assert/strict";
import { mountCapability } from "../support/csi_client.ts";
import { fuseMountsUnder } from "../support/mod.ts";
import { PLUGIN, publishReq, serverPid, target, withNode } from "../support/node_env.ts";
import { MAX_RESTARTS } from "../../internal/mounter/process_mounter.ts";

/** Polls `check` every 100 ms for up to 30 s. */
async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function sh(cmd: string): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command("bash", { args: ["-c", cmd] }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

Deno.test("NodePublishVolume() shares one FUSE mount between two targets of a dynamic volume", async () => {
  await withNode(async ({ csi, s3, kubelet }) => {
    const { volume } = await csi.call("Controller", "CreateVolume", {
      name: "pvc-node-1",
      volume_capabilities: [mountCapability()],
      capacity_range: { required_bytes: 1 << 30 },
    });
    const a = target(kubelet, "pod-a");
    const b = target(kubelet, "pod-b");
    await csi.call(
      "Node",
      "NodePublishVolume",
      publishReq(volume.volume_id, volume.volume_context, a),
    );
    await csi.call(
      "Node",
      "NodePublishVolume",
      publishReq(volume.volume_id, volume.volume_context, b),
    );
    const sources = await fuseMountsUnder(`${kubelet}/${PLUGIN}/mnt`);
    assert.equal(sources.length, 1, "one FUSE source mount for both targets");
    await Deno.writeTextFile(`${a}/hello.txt`, "written through pod-a\n");
    assert.equal(await Deno.readTextFile(`${b}/hello.txt`), "written through pod-a\n");
    const obj = await s3.getObject(volume.volume_id, "hello.txt");
    assert.equal(new TextDecoder().decode(obj.body), "written through pod-a\n");
    // Publishing again onto a published target is a no-op success.
    await csi.call(
      "Node",
      "NodePublishVolume",
      publishReq(volume.volume_id, volume.volume_context, a),
    );
    // Unpublish A first: B keeps working and the source stays.
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: volume.volume_id, target_path: a });
    await assert.rejects(Deno.stat(a), Deno.errors.NotFound);
    assert.equal(await Deno.readTextFile(`${b}/hello.txt`), "written through pod-a\n");
    assert.equal((await fuseMountsUnder(`${kubelet}/${PLUGIN}/mnt`)).length, 1);
    // Unpublish B: the last target goes, so does the source mount and its state.
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: volume.volume_id, target_path: b });
    assert.deepEqual(await fuseMountsUnder(kubelet), []);
    assert.deepEqual([...Deno.readDirSync(`${kubelet}/${PLUGIN}/state`)], []);
    // Unpublishing a target that is gone succeeds.
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: volume.volume_id, target_path: b });
  });
});

Deno.test("NodePublishVolume() serves a static volume with a prefix; unpublish in reverse order", async () => {
  await withNode(async ({ csi, s3, kubelet, secrets }) => {
    await s3.createBucket("static-bucket");
    await s3.putObject("static-bucket", "team/data/a.txt", new TextEncoder().encode("A"));
    await s3.putObject("static-bucket", "other.txt", new TextEncoder().encode("hidden"));
    const ctx = { bucketName: "static-bucket", authenticationSource: "secret" };
    const cap = mountCapability("MULTI_NODE_MULTI_WRITER", ["prefix team/", "allow-delete"]);
    const a = target(kubelet, "pod-a", "static-pv");
    const b = target(kubelet, "pod-b", "static-pv");
    for (const t of [a, b]) {
      await csi.call("Node", "NodePublishVolume", {
        ...publishReq("static-pv-handle", ctx, t),
        volume_capability: cap,
        secrets,
      });
    }
    assert.deepEqual([...Deno.readDirSync(a)].map((e) => e.name), ["data"]);
    assert.equal(await Deno.readTextFile(`${b}/data/a.txt`), "A");
    await Deno.writeTextFile(`${b}/data/b.txt`, "B");
    assert.ok(await s3.headObject("static-bucket", "team/data/b.txt"));
    await Deno.remove(`${a}/data/b.txt`);
    assert.equal(await s3.headObject("static-bucket", "team/data/b.txt"), null);
    await csi.call("Node", "NodeUnpublishVolume", {
      volume_id: "static-pv-handle",
      target_path: b,
    });
    assert.equal(await Deno.readTextFile(`${a}/data/a.txt`), "A");
    await csi.call("Node", "NodeUnpublishVolume", {
      volume_id: "static-pv-handle",
      target_path: a,
    });
    assert.deepEqual(await fuseMountsUnder(kubelet), []);
  });
});

Deno.test("NodePublishVolume() read-only publishes refuse writes with EROFS, a pod's one sharing a writable publish's mount; a writable re-publish is ALREADY_EXISTS", async () => {
  await withNode(async ({ csi, s3, kubelet }) => {
    await s3.createBucket("ro-bucket");
    await s3.putObject("ro-bucket", "f.txt", new TextEncoder().encode("keep"));
    const ctx = { bucketName: "ro-bucket" };
    const podRo = target(kubelet, "pod-ro1");
    const rw = target(kubelet, "pod-rw");
    const pvRo = target(kubelet, "pod-ro2");
    await csi.call(
      "Node",
      "NodePublishVolume",
      publishReq("ro-vol", ctx, podRo, { readonly: true }),
    );
    await csi.call("Node", "NodePublishVolume", publishReq("ro-vol", ctx, rw));
    await csi.call("Node", "NodePublishVolume", {
      ...publishReq("ro-vol", ctx, pvRo),
      volume_capability: mountCapability("MULTI_NODE_READER_ONLY"),
    });
    // A pod's readOnly is its bind's: it shares the writable mount; a reader-only mode is the PV's.
    assert.equal((await fuseMountsUnder(`${kubelet}/${PLUGIN}/mnt`)).length, 2);
    // Publishing a live target again with other options is refused, not swapped under the pod.
    const clash = await csi.code("Node", "NodePublishVolume", publishReq("ro-vol", ctx, podRo));
    assert.equal(clash.code, "ALREADY_EXISTS");
    assert.match(clash.details, /already published with other options/);
    await Deno.writeTextFile(`${rw}/rw.txt`, "shared");
    assert.equal(await Deno.readTextFile(`${podRo}/rw.txt`), "shared");
    for (const t of [podRo, pvRo]) {
      assert.equal(await Deno.readTextFile(`${t}/f.txt`), "keep");
      const w = await sh(`echo x > '${t}/new.txt'`);
      assert.notEqual(w.code, 0);
      assert.match(w.out, /Read-only file system/);
    }
    assert.equal(await s3.headObject("ro-bucket", "new.txt"), null);
    for (const t of [podRo, rw, pvRo]) {
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: "ro-vol", target_path: t });
    }
  });
});

Deno.test("a mount server that keeps dying is replaced at most MAX_RESTARTS times, then the mount turns stale and the next NodePublishVolume restores it", async () => {
  await withNode(async ({ csi, s3, kubelet, stateRoot }) => {
    await s3.createBucket("crash-bucket");
    const ctx = { bucketName: "crash-bucket" };
    const t = target(kubelet, "pod-crash");
    await csi.call("Node", "NodePublishVolume", publishReq("crash-vol", ctx, t));
    await Deno.writeTextFile(`${t}/before.txt`, "1");
    // Each kill is answered by a replacement on the live connection, until the bound.
    for (let i = 0; i < MAX_RESTARTS; i++) {
      const pid = await serverPid(stateRoot);
      Deno.kill(pid, "SIGKILL");
      await waitFor(async () => (await serverPid(stateRoot)) !== pid, "a replacement");
      assert.equal(await Deno.readTextFile(`${t}/before.txt`), "1");
    }
    Deno.kill(await serverPid(stateRoot), "SIGKILL");
    await waitFor(async () => (await sh(`stat '${t}'`)).out.includes("not connected"), "stale");
    await csi.call("Node", "NodePublishVolume", publishReq("crash-vol", ctx, t));
    assert.equal(await Deno.readTextFile(`${t}/before.txt`), "1");
    await Deno.writeTextFile(`${t}/after.txt`, "2");
    assert.ok(await s3.headObject("crash-bucket", "after.txt"));
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: "crash-vol", target_path: t });
    assert.deepEqual(await fuseMountsUnder(kubelet), []);
  });
});

Deno.test("NodePublishVolume() with rotated secret values makes the running mount use them", async () => {
  await withNode(async ({ csi, s3, kubelet, secrets, minio, driver }) => {
    await s3.createBucket("rot-bucket");
    for (const k of ["one", "two", "three"]) {
      await s3.putObject("rot-bucket", `${k}.txt`, new TextEncoder().encode(k));
    }
    const ctx = { bucketName: "rot-bucket", authenticationSource: "secret" };
    const t = target(kubelet, "pod-rot");
    await csi.call("Node", "NodePublishVolume", publishReq("rot-vol", ctx, t, { secrets }));
    assert.equal(await Deno.readTextFile(`${t}/one.txt`), "one");
    const mountsBefore = await fuseMountsUnder(kubelet);
    // Rotate to credentials S3 rejects: the next request of the running mount fails.
    const revoked = { access_key_id: "revokedkey", secret_access_key: "revoked-secret-value-1" };
    await csi.call(
      "Node",
      "NodePublishVolume",
      publishReq("rot-vol", ctx, t, { secrets: revoked }),
    );
    assert.deepEqual(await fuseMountsUnder(kubelet), mountsBefore, "same mount, not a new one");
    await new Promise((r) => setTimeout(r, 1500));
    const denied = await sh(`cat '${t}/two.txt'`);
    assert.notEqual(denied.code, 0, "revoked credentials must be used by the running mount");
    // Rotate back to valid values: the same mount works again without a restart.
    await csi.call("Node", "NodePublishVolume", publishReq("rot-vol", ctx, t, { secrets }));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await Deno.readTextFile(`${t}/three.txt`), "three");
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: "rot-vol", target_path: t });
    assert.ok(!driver.output().includes(minio.secretAccessKey));
    assert.ok(!driver.output().includes("revoked-secret-value-1"));
  });
});

Deno.test("NodePublishVolume() applies fsGroup: group ownership and group-writable modes", async () => {
  await withNode(async ({ csi, s3, kubelet }) => {
    await s3.createBucket("fsg-bucket");
    await s3.putObject("fsg-bucket", "d/f.txt", new TextEncoder().encode("x"));
    const t = target(kubelet, "pod-fsg");
    const cap = {
      mount: { fs_type: "", mount_flags: [], volume_mount_group: "4321" },
      access_mode: { mode: "MULTI_NODE_MULTI_WRITER" },
    };
    await csi.call("Node", "NodePublishVolume", {
      ...publishReq("fsg-vol", { bucketName: "fsg-bucket" }, t),
      volume_capability: cap,
    });
    const f = await Deno.stat(`${t}/d/f.txt`);
    assert.equal(f.gid, 4321);
    assert.equal(f.mode! & 0o777, 0o660);
    const d = await Deno.stat(`${t}/d`);
    assert.equal(d.mode! & 0o777, 0o770);
    const caps = await csi.call("Node", "NodeGetCapabilities", {});
    assert.ok(
      caps.capabilities.some((c: { rpc: { type: string } }) => c.rpc.type === "VOLUME_MOUNT_GROUP"),
    );
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: "fsg-vol", target_path: t });
  });
});

Deno.test("NodePublishVolume() rejects bad input with INVALID_ARGUMENT naming the field, and surfaces mount errors", async () => {
  await withNode(async ({ csi, kubelet }) => {
    const t = target(kubelet, "pod-bad");
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [publishReq("v", {}, t), /bucketName/],
      [
        publishReq("v", { bucketName: "b-1", authenticationSource: "kerberos" }, t),
        /authenticationSource/,
      ],
      [publishReq("v", { bucketName: "b-1" }, "/etc/evil"), /kubelet directory/],
      [publishReq("v", { bucketName: "b-1" }, `${kubelet}/../escape`), /kubelet directory/],
      [{
        ...publishReq("v", { bucketName: "b-1" }, t),
        volume_capability: mountCapability("MULTI_NODE_MULTI_WRITER", ["endpoint-url=http://x"]),
      }, /"endpoint-url"/],
      [{
        ...publishReq("v", { bucketName: "b-1" }, t),
        volume_capability: mountCapability("MULTI_NODE_MULTI_WRITER", ["bogus-flag"]),
      }, /"bogus-flag"/],
    ];
    for (const [req, re] of cases) {
      const err = await csi.code("Node", "NodePublishVolume", req);
      assert.equal(err.code, "INVALID_ARGUMENT", JSON.stringify(req));
      assert.match(err.details, re);
    }
    const missing = await csi.code(
      "Node",
      "NodePublishVolume",
      publishReq("v", { bucketName: "no-such-bucket" }, t),
    );
    assert.equal(missing.code, "FAILED_PRECONDITION");
    assert.match(missing.details, /no-such-bucket.*does not exist/);
    await assert.rejects(Deno.stat(t), Deno.errors.NotFound, "a failed publish leaves no target");
    assert.deepEqual(await fuseMountsUnder(kubelet), []);
  });
});
