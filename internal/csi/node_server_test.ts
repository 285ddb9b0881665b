import assert from "node:assert/strict";
import {
  AbortedError,
  AlreadyExistsError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  UnimplementedError,
} from "../errors/mod.ts";
import type { MountHealth } from "../fuse/mount.ts";
import type { Mounter, MountSpec } from "../mounter/mounter.ts";
import type { TargetOps } from "../mounter/target_ops.ts";
import { NodeServer } from "./node_server.ts";

/**
 * An in-memory mount table and directory set. A mount shows a device; a
 * bind mount shows its source's device; a killed device makes every mount
 * of it stale, as a dead FUSE server does.
 */
class Kernel {
  readonly dirs = new Set<string>();
  /** In mount order: later entries are stacked on earlier ones. */
  table: Array<{ point: string; dev: number; readOnly: boolean }> = [];
  readonly dead = new Set<number>();
  #nextDev = 1;

  top(path: string) {
    return this.table.findLast((e) => e.point === path);
  }

  mountNew(point: string, readOnly = false): number {
    const dev = this.#nextDev++;
    this.table.push({ point, dev, readOnly });
    return dev;
  }

  kill(point: string): void {
    this.dead.add(this.top(point)!.dev);
  }

  removeTop(point: string): void {
    const e = this.top(point);
    if (e) this.table.splice(this.table.lastIndexOf(e), 1);
  }

  /** The mount points showing the same device as `path`. */
  sharing(path: string): string[] {
    const e = this.top(path);
    return e ? this.table.filter((x) => x.dev === e.dev).map((x) => x.point) : [];
  }
}

class MemoryTargetOps implements TargetOps {
  /** What `confine` answers (the real checks are BindTargetOps', tested on the real file system). */
  escape: string | undefined;
  confine(): Promise<string | undefined> {
    return Promise.resolve(this.escape);
  }
  binds = 0;
  failBind: Error | undefined;
  readonly unmounts: Array<{ path: string; lazy: boolean }> = [];
  constructor(readonly k: Kernel) {}

  check(path: string): Promise<MountHealth> {
    const e = this.k.top(path);
    if (e) return Promise.resolve(this.k.dead.has(e.dev) ? "stale" : "ok");
    return Promise.resolve(this.k.dirs.has(path) ? "not_mounted" : "missing");
  }
  sourceOf(target: string, sourceRoot: string): Promise<string | undefined> {
    return Promise.resolve(
      this.k.sharing(target).find((p) => p.startsWith(sourceRoot + "/")),
    );
  }
  readOnly(path: string): Promise<boolean> {
    return Promise.resolve(this.k.top(path)?.readOnly === true);
  }
  inUse(source: string): Promise<boolean> {
    return Promise.resolve(this.k.sharing(source).some((p) => p !== source));
  }
  makeTarget(target: string): Promise<void> {
    this.k.dirs.add(target);
    return Promise.resolve();
  }
  removeTarget(target: string): Promise<void> {
    if (this.k.top(target)) return Promise.reject(new Error(`"${target}" is busy`));
    this.k.dirs.delete(target);
    return Promise.resolve();
  }
  bind(source: string, target: string, readOnly: boolean): Promise<void> {
    if (this.failBind) return Promise.reject(this.failBind);
    const s = this.k.top(source);
    if (!s || !this.k.dirs.has(target)) return Promise.reject(new Error("ENOENT"));
    this.binds++;
    this.k.table.push({ point: target, dev: s.dev, readOnly });
    return Promise.resolve();
  }
  unmount(path: string, lazy: boolean): Promise<void> {
    this.unmounts.push({ path, lazy });
    this.k.removeTop(path);
    return Promise.resolve();
  }
}

class FakeMounter implements Mounter {
  readonly ensured: MountSpec[] = [];
  readonly released: Array<{ sourceDir: string; stateDir: string }> = [];
  starts = 0;
  fail: Error | undefined;
  #held: { entered: () => void; released: Promise<void> } | undefined;
  constructor(readonly k: Kernel) {}

  /** Holds the next ensureMounted() call in flight: `entered` resolves once it is. */
  hold(): { entered: Promise<void>; release: () => void } {
    const g = gate();
    const entered = gate();
    this.#held = { entered: entered.open, released: g.promise };
    return { entered: entered.promise, release: g.open };
  }

  async ensureMounted(spec: MountSpec): Promise<void> {
    this.ensured.push(spec);
    const held = this.#held;
    this.#held = undefined;
    if (held) {
      held.entered();
      await held.released;
    }
    if (this.fail) throw this.fail;
    const e = this.k.top(spec.sourceDir);
    if (e && !this.k.dead.has(e.dev)) return;
    if (e) this.k.removeTop(spec.sourceDir);
    this.k.dirs.add(spec.sourceDir);
    this.k.mountNew(spec.sourceDir, spec.options.readOnly);
    this.starts++;
  }
  unmount(sourceDir: string, stateDir: string): Promise<void> {
    this.released.push({ sourceDir, stateDir });
    this.k.removeTop(sourceDir);
    this.k.dirs.delete(sourceDir);
    return Promise.resolve();
  }
}

const DRIVER = { accessKeyId: "DRIVERKEY", secretAccessKey: "driver-secret" };
const PLUGIN = "/var/lib/kubelet/plugins/s3.csi.scality.com";
const T = "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/pv-1/mount";
const T2 = "/var/lib/kubelet/pods/uid-2/volumes/kubernetes.io~csi/pv-1/mount";

function setup() {
  const k = new Kernel();
  const targets = new MemoryTargetOps(k);
  const mounter = new FakeMounter(k);
  const node = new NodeServer({
    nodeId: "n1",
    kubeletPath: "/var/lib/kubelet/",
    mounter,
    targets,
    driverCredentials: DRIVER,
  });
  return { k, targets, mounter, node };
}

function req(ctx: Record<string, string>, extra: Record<string, unknown> = {}) {
  return {
    volume_id: "vol-1",
    target_path: T,
    volume_capability: {
      access_type: "mount" as const,
      mount: { fs_type: "", mount_flags: [] as string[], volume_mount_group: "" },
      access_mode: { mode: "MULTI_NODE_MULTI_WRITER" },
    },
    volume_context: ctx,
    ...extra,
  };
}

const B = { bucketName: "b-1" };

/** The spec a publish asks the Mounter for. */
async function specOf(r: ReturnType<typeof req>): Promise<MountSpec> {
  const { node, mounter } = setup();
  await node.publish(r);
  return mounter.ensured[0]!;
}

function gate(): { open: () => void; promise: Promise<void> } {
  let open!: () => void;
  const promise = new Promise<void>((r) => open = r);
  return { open, promise };
}

Deno.test("publish() maps a dynamic shared volume: bucket, prefix, region, driver credentials", async () => {
  const spec = await specOf(
    req({
      bucketName: "shared-b",
      prefix: "csi-s3-x/",
      region: "eu-west-1",
      authenticationSource: "driver",
    }),
  );
  assert.equal(spec.bucket, "shared-b");
  assert.equal(spec.options.prefix, "csi-s3-x/");
  assert.equal(spec.options.region, "eu-west-1");
  assert.equal(spec.options.readOnly, false);
  assert.equal(spec.authenticationSource, "driver");
  assert.deepEqual(spec.credentials, DRIVER);
  assert.equal(spec.sourceDir, `${PLUGIN}/mnt/${spec.mountId}`);
  assert.equal(spec.stateDir, `${PLUGIN}/state/${spec.mountId}`);
});

Deno.test("publish() nests a prefix option inside the volume's prefix", async () => {
  const r = req({ bucketName: "b-1", prefix: "csi-s3-x/" });
  r.volume_capability.mount.mount_flags = ["prefix logs/"];
  assert.equal((await specOf(r)).options.prefix, "csi-s3-x/logs/");
});

Deno.test("publish() takes node-publish secrets only with authenticationSource secret", async () => {
  const secrets = { access_key_id: "VOLKEY", secret_access_key: "vol-secret" };
  const withSecret = await specOf(req({ bucketName: "b-1", authenticationSource: "secret" }, {
    secrets,
  }));
  assert.equal(withSecret.authenticationSource, "secret");
  assert.equal(withSecret.credentials?.accessKeyId, "VOLKEY");
  // Secrets given to a driver-authenticated volume are ignored.
  const driverSource = await specOf(req(B, { secrets }));
  assert.equal(driverSource.credentials?.accessKeyId, "DRIVERKEY");
  // "secret" without a secret falls back to the driver's credentials (as the seeds document).
  const fallback = await specOf(req({ bucketName: "b-1", authenticationSource: "secret" }));
  assert.equal(fallback.authenticationSource, "driver");
  assert.equal(fallback.credentials?.accessKeyId, "DRIVERKEY");
});

Deno.test("publish() keeps credential values and a publish's readonly out of the sharing key; a PV-level read-only is another mount", async () => {
  const ctx = { bucketName: "b-1", authenticationSource: "secret" };
  const secrets = { access_key_id: "K1", secret_access_key: "S1" };
  const a = await specOf(req(ctx, { secrets }));
  const b = await specOf(req(ctx, { secrets: { access_key_id: "K2", secret_access_key: "S2" } }));
  assert.equal(a.mountId, b.mountId, "a rotated secret must reuse the running mount");
  const podRo = await specOf(req(ctx, { secrets, readonly: true }));
  assert.equal(podRo.mountId, a.mountId, "a pod's readOnly is its bind's, not the source's");
  assert.equal(podRo.options.readOnly, false);
  const option = req(ctx, { secrets });
  option.volume_capability.mount.mount_flags = ["read-only"];
  const mode = req(ctx, { secrets });
  mode.volume_capability.access_mode.mode = "MULTI_NODE_READER_ONLY";
  for (const pvRo of [await specOf(option), await specOf(mode)]) {
    assert.notEqual(pvRo.mountId, a.mountId, "a PV-level read-only is a different mount");
    assert.equal(pvRo.options.readOnly, true);
  }
});

Deno.test("publish() gives the Mounter the workload pod's UID and fsGroup, outside the sharing key", async () => {
  const r = req({ ...B, "csi.storage.k8s.io/pod.uid": "pod-uid-1" });
  r.volume_capability.mount.volume_mount_group = "4321";
  const a = await specOf(r);
  assert.equal(a.workloadPodUid, "pod-uid-1");
  assert.equal(a.fsGroup, "4321");
  const other = await specOf({
    ...r,
    volume_context: { ...B, "csi.storage.k8s.io/pod.uid": "pod-uid-2" },
  });
  assert.equal(other.mountId, a.mountId, "two workloads with the same options share a mount");
  const none = await specOf(req(B));
  assert.equal(none.workloadPodUid, undefined);
  assert.equal(none.fsGroup, undefined);
});

Deno.test("publish() and unpublish() name the field at fault and touch nothing", async () => {
  const { node, k, mounter } = setup();
  const cases: Array<[Promise<unknown>, string]> = [
    [node.publish(req({})), "volume_context.bucketName"],
    [node.publish(req({ bucketName: "Bad_Bucket" })), "volume_context.bucketName"],
    [
      node.publish(req({ bucketName: "b-1", authenticationSource: "iam" })),
      "volume_context.authenticationSource",
    ],
    [node.publish({ ...req(B), target_path: "/tmp/x" }), "target_path"],
    [node.publish({ ...req(B), target_path: "relative/x" }), "target_path"],
    [node.publish({ ...req(B), target_path: `${PLUGIN}/mnt/x` }), "target_path"],
    [node.publish({ ...req(B), volume_id: "" }), "volume_id"],
    [node.publish({ ...req(B), volume_capability: undefined }), "volume_capability"],
    [node.unpublish({ volume_id: "vol-1", target_path: "/etc" }), "target_path"],
    [node.unpublish({ target_path: T }), "volume_id"],
  ];
  for (const [p, fieldName] of cases) {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, String(err));
      assert.equal(err.field, fieldName);
      return true;
    });
  }
  assert.deepEqual(mounter.ensured, []);
  assert.deepEqual(k.table, []);
  assert.deepEqual([...k.dirs], []);
});

Deno.test("publish() mounts the source, creates the target and bind-mounts it read-only when asked", async () => {
  const { node, k, mounter } = setup();
  assert.deepEqual(await node.publish(req(B, { readonly: true })), {});
  const { sourceDir } = mounter.ensured[0]!;
  assert.ok(k.dirs.has(T));
  assert.deepEqual(k.sharing(T), [sourceDir, T]);
  assert.equal(k.top(T)!.readOnly, true);
  assert.equal(k.top(sourceDir)!.readOnly, false, "the source stays writable for other workloads");
});

Deno.test("publish() of one volume read-only and writable shares one source; only the read-only target is a read-only bind", async () => {
  const { node, k, targets, mounter } = setup();
  await node.publish(req(B, { readonly: true }));
  await node.publish(req(B, { target_path: T2 }));
  assert.equal(mounter.starts, 1, "one source mount, so one Mountpoint Pod session");
  const [ro, rw] = mounter.ensured;
  assert.equal(ro!.sourceDir, rw!.sourceDir);
  assert.deepEqual(k.sharing(T), [ro!.sourceDir, T, T2]);
  assert.equal(k.top(T)!.readOnly, true);
  assert.equal(k.top(T2)!.readOnly, false);
  // Each target is published again as it is; the other flag on the same mount is refused.
  await node.publish(req(B, { readonly: true }));
  await node.publish(req(B, { target_path: T2 }));
  assert.equal(targets.binds, 2);
  await assert.rejects(node.publish(req(B)), (err: unknown) => {
    assert.ok(err instanceof AlreadyExistsError, String(err));
    assert.match(
      err.message,
      /already published with other options \(read-only on the same mount\)/,
    );
    return true;
  });
  await node.unpublish({ volume_id: "vol-1", target_path: T });
  assert.deepEqual(mounter.released, [], "the writable target still uses the source");
});

Deno.test("publish() onto a target already published with the same options succeeds without a second mount and refreshes credentials", async () => {
  const { node, k, targets, mounter } = setup();
  const ctx = { bucketName: "b-1", authenticationSource: "secret" };
  await node.publish(req(ctx, { secrets: { access_key_id: "K1", secret_access_key: "S1" } }));
  const table = structuredClone(k.table);
  await node.publish(req(ctx, { secrets: { access_key_id: "K2", secret_access_key: "S2" } }));
  assert.deepEqual(k.table, table, "the same mounts, nothing remounted");
  assert.equal(targets.binds, 1);
  assert.equal(mounter.starts, 1);
  assert.equal(mounter.ensured.at(-1)!.credentials?.accessKeyId, "K2", "rotated credentials");
});

Deno.test("publish() onto a stale target (transport endpoint not connected) cleans it and publishes a working mount", async () => {
  const { node, k, targets, mounter } = setup();
  await node.publish(req(B));
  k.kill(T); // the mount process died: source and target are both stale
  assert.equal(await targets.check(T), "stale");
  await node.publish(req(B));
  assert.deepEqual(targets.unmounts, [{ path: T, lazy: true }]);
  assert.equal(await targets.check(T), "ok");
  assert.equal(mounter.starts, 2, "the dead source was mounted again");
  assert.deepEqual(k.sharing(T), [mounter.ensured[0]!.sourceDir, T]);
});

Deno.test("publish() onto a target mounted from a foreign source replaces that mount", async () => {
  const { node, k, targets, mounter } = setup();
  k.dirs.add(T);
  const foreign = k.mountNew(T);
  await node.publish(req(B));
  assert.deepEqual(targets.unmounts, [{ path: T, lazy: true }]);
  assert.ok(!k.table.some((e) => e.dev === foreign), "the foreign mount is gone");
  assert.deepEqual(k.sharing(T), [mounter.ensured[0]!.sourceDir, T]);
});

Deno.test("publish() onto a target published with other options is ALREADY_EXISTS and leaves the live target alone", async () => {
  const incompatible: Array<[string, ReturnType<typeof req>]> = [
    ["read-only", req(B, { readonly: true })],
    ["reader-only access mode", {
      ...req(B),
      volume_capability: {
        ...req(B).volume_capability,
        access_mode: { mode: "MULTI_NODE_READER_ONLY" },
      },
    }],
    ["mount options", {
      ...req(B),
      volume_capability: {
        ...req(B).volume_capability,
        mount: { fs_type: "", mount_flags: ["allow-delete"], volume_mount_group: "" },
      },
    }],
    ["volume attributes", req({ bucketName: "b-1", prefix: "other/" })],
  ];
  for (const [what, r] of incompatible) {
    const { node, k, targets, mounter } = setup();
    await node.publish(req(B));
    const table = structuredClone(k.table);
    await assert.rejects(node.publish(r), (err: unknown) => {
      assert.ok(err instanceof AlreadyExistsError, `${what}: ${err}`);
      assert.match(err.message, /already published with other options/);
      return true;
    });
    assert.deepEqual(k.table, table, `${what}: the target keeps its mount`);
    assert.deepEqual(targets.unmounts, [], what);
    assert.equal(mounter.ensured.length, 1, `${what}: no mount for the refused publish`);
  }
});

Deno.test("publish() whose bind mount fails releases the new source, removes the target and says why", async () => {
  const { node, k, targets, mounter } = setup();
  targets.failBind = new Error("EPERM: operation not permitted");
  await assert.rejects(node.publish(req(B)), (err: unknown) => {
    assert.ok(err instanceof InternalError);
    assert.match(err.message, /Cannot publish volume "vol-1" at ".*pv-1\/mount": EPERM/);
    return true;
  });
  const { sourceDir, stateDir } = mounter.ensured[0]!;
  assert.deepEqual(mounter.released, [{ sourceDir, stateDir }]);
  assert.deepEqual(k.table, []);
  assert.ok(!k.dirs.has(T), "a failed publish leaves no target");
});

Deno.test("publish() whose bind mount fails keeps a source another target still uses", async () => {
  const { node, k, targets, mounter } = setup();
  await node.publish(req(B));
  targets.failBind = new Error("EPERM");
  await assert.rejects(node.publish(req(B, { target_path: T2 })), InternalError);
  assert.deepEqual(mounter.released, []);
  assert.equal(await targets.check(T), "ok");
  assert.ok(!k.dirs.has(T2));
});

Deno.test("publish() whose mount fails returns the Mounter's error and creates no target", async () => {
  const { node, k, mounter } = setup();
  mounter.fail = new FailedPreconditionError('Cannot mount bucket "b-1": it does not exist');
  await assert.rejects(node.publish(req(B)), FailedPreconditionError);
  assert.ok(!k.dirs.has(T));
  assert.deepEqual(k.table, []);
});

Deno.test("unpublish() of the last target unmounts it, removes it and releases the source", async () => {
  const { node, k, targets, mounter } = setup();
  await node.publish(req(B));
  const { sourceDir, stateDir } = mounter.ensured[0]!;
  assert.deepEqual(await node.unpublish({ volume_id: "vol-1", target_path: T }), {});
  assert.deepEqual(targets.unmounts, [{ path: T, lazy: false }]);
  assert.ok(!k.dirs.has(T));
  assert.deepEqual(mounter.released, [{ sourceDir, stateDir }]);
  assert.deepEqual(k.table, []);
});

Deno.test("unpublish() of one of two targets keeps the source for the other", async () => {
  const { node, k, targets, mounter } = setup();
  await node.publish(req(B));
  await node.publish(req(B, { target_path: T2 }));
  assert.equal(mounter.starts, 1, "both targets share one source");
  await node.unpublish({ volume_id: "vol-1", target_path: T });
  assert.deepEqual(mounter.released, []);
  assert.equal(await targets.check(T2), "ok");
  assert.ok(!k.dirs.has(T));
  await node.unpublish({ volume_id: "vol-1", target_path: T2 });
  assert.equal(mounter.released.length, 1);
  assert.deepEqual(k.table, []);
});

Deno.test("unpublish() of a stale target unmounts it lazily and releases its dead source", async () => {
  const { node, k, targets, mounter } = setup();
  await node.publish(req(B));
  k.kill(T);
  await node.unpublish({ volume_id: "vol-1", target_path: T });
  assert.deepEqual(targets.unmounts, [{ path: T, lazy: true }]);
  assert.equal(mounter.released.length, 1);
  assert.deepEqual(k.table, []);
  assert.ok(!k.dirs.has(T));
});

Deno.test("unpublish() of a missing or unmounted target succeeds and removes the directory", async () => {
  const { node, k, targets, mounter } = setup();
  await node.unpublish({ volume_id: "vol-1", target_path: T });
  k.dirs.add(T);
  await node.unpublish({ volume_id: "vol-1", target_path: T });
  assert.ok(!k.dirs.has(T));
  assert.deepEqual(targets.unmounts, []);
  assert.deepEqual(mounter.released, []);
});

Deno.test("unpublish() of a target mounted from a foreign source unmounts it and releases nothing", async () => {
  const { node, k, mounter } = setup();
  await node.publish(req(B, { target_path: T2 }));
  k.dirs.add(T);
  k.mountNew(T);
  await node.unpublish({ volume_id: "vol-1", target_path: T });
  assert.ok(!k.dirs.has(T));
  assert.deepEqual(mounter.released, []);
  assert.deepEqual(k.sharing(T2).length, 2, "our source and its target stay");
});

Deno.test("unpublish() that cannot remove the target is INTERNAL naming the target", async () => {
  const { node, k, targets } = setup();
  k.dirs.add(T);
  targets.removeTarget = () => Promise.reject(new Error("EBUSY: device or resource busy"));
  await assert.rejects(node.unpublish({ volume_id: "vol-1", target_path: T }), (err: unknown) => {
    assert.ok(err instanceof InternalError);
    assert.match(err.message, /Cannot remove target ".*pv-1\/mount": EBUSY/);
    return true;
  });
});

Deno.test("publish() calls identical to one in flight both succeed with one mount and one bind", async () => {
  const { node, targets, mounter } = setup();
  const held = mounter.hold();
  const a = node.publish(req(B));
  await held.entered;
  // The second call joins the first or, if it reaches the lock after it, finds the target published.
  const b = node.publish(req(B));
  held.release();
  assert.deepEqual(await Promise.all([a, b]), [{}, {}]);
  assert.equal(mounter.starts, 1);
  assert.equal(targets.binds, 1);
});

Deno.test("publish() of one volume to two targets at once: both succeed, with one mount and two binds", async () => {
  const { node, targets, mounter } = setup();
  const held = mounter.hold();
  const a = node.publish(req(B));
  await held.entered;
  const other = T2;
  const b = node.publish({ ...req(B), target_path: other });
  held.release();
  assert.deepEqual(await Promise.all([a, b]), [{}, {}]);
  assert.equal(mounter.starts, 1);
  assert.equal(targets.binds, 2);
  // And both unpublished at once: the mount goes with the last.
  await Promise.all([
    node.unpublish({ volume_id: "vol-1", target_path: T }),
    node.unpublish({ volume_id: "vol-1", target_path: other }),
  ]);
  assert.equal(mounter.released.length, 1);
});

Deno.test("unpublish() while a publish of the same volume is in flight is ABORTED; retried after, it unpublishes", async () => {
  const { node, k, mounter } = setup();
  const held = mounter.hold();
  const publishing = node.publish(req(B));
  await held.entered;
  await assert.rejects(
    node.unpublish({ volume_id: "vol-1", target_path: T }),
    (err: unknown) => err instanceof AbortedError && /publish/.test(err.message),
  );
  held.release();
  await publishing;
  assert.equal(k.sharing(T).length, 2, "the publish completed untouched");
  await node.unpublish({ volume_id: "vol-1", target_path: T });
  assert.deepEqual(k.table, []);
  assert.ok(!k.dirs.has(T));
});

Deno.test("publish() while an unpublish of the same target is in flight is ABORTED", async () => {
  const { node, k, targets } = setup();
  await node.publish(req(B));
  const g = gate();
  const entered = gate();
  const realCheck = targets.check.bind(targets);
  targets.check = async (path) => {
    entered.open();
    await g.promise;
    return realCheck(path);
  };
  const unpublishing = node.unpublish({ volume_id: "vol-1", target_path: T });
  await entered.promise;
  await assert.rejects(node.publish(req(B)), AbortedError);
  g.open();
  await unpublishing;
  assert.deepEqual(k.table, []);
});

Deno.test("NodeGetVolumeStats is not advertised and, asked anyway, says why instead of a made-up capacity", async () => {
  const { node } = setup();
  const h = node.handlers();
  const caps = await h.NodeGetCapabilities!({});
  const types = caps.capabilities.map((c: { rpc: { type: string } }) => c.rpc.type);
  assert.ok(!types.includes("GET_VOLUME_STATS"), `advertised: ${types}`);
  await assert.rejects(
    h.NodeGetVolumeStats!({ volume_id: "vol-1", volume_path: T }),
    (err: Error) => err instanceof UnimplementedError && /no capacity/.test(err.message),
  );
});
