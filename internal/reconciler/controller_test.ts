/**
 * The reconciler's runtime against the in-memory API: informers, queue,
 * expectations and writes together, on a fake clock.
 */
import assert from "node:assert/strict";
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import { AbortedError, AlreadyExistsError } from "../errors/mod.ts";
import { type Attachment, RESOURCES, workloadUids } from "../kube/mod.ts";
import { FakeKubeApi } from "../kube/fake_api.ts";
import { LABEL_VERSION, MOUNTPOINT_NAMESPACE } from "../podmount/contract.ts";
import { reconciles, registry } from "../metrics/mod.ts";
import { FakeClock } from "./clock.ts";
import { Reconciler } from "./controller.ts";
import { WATCH_GRACE_MS } from "./informer.ts";
import { node, pv, pvc, testConfig, workload } from "./testing.ts";

interface World {
  api: FakeKubeApi;
  clock: FakeClock;
  stop(): Promise<void>;
}

async function start(api: FakeKubeApi, clock: FakeClock, version = "1.0.0"): Promise<World> {
  const r = new Reconciler(testConfig(api, clock, version));
  const ac = new AbortController();
  const running = r.run(ac.signal);
  await clock.advance(0);
  return {
    api,
    clock,
    stop: async () => {
      ac.abort();
      await running;
    },
  };
}

/** A cluster with node n1, PV pv-a (volume vol-a) and claim claim-a. */
async function cluster(): Promise<{ api: FakeKubeApi; clock: FakeClock }> {
  const api = new FakeKubeApi();
  await api.create(RESOURCES.node, node("n1"));
  await api.create(RESOURCES.persistentVolume, pv("pv-a", "vol-a"));
  await api.create(RESOURCES.persistentVolumeClaim, pvc("apps", "claim-a", "pv-a"));
  return { api, clock: new FakeClock() };
}

async function addWorkload(w: World, name: string, opts: { fsGroup?: number } = {}) {
  const p = await w.api.create(RESOURCES.pod, workload(name, "claim-a", "n1", opts));
  await w.clock.advance(0);
  return p.metadata!.uid!;
}

async function removeWorkload(w: World, name: string) {
  await w.api.delete(RESOURCES.pod, name, "apps");
  await w.clock.advance(0);
}

const mountpointPods = (api: FakeKubeApi) =>
  api.objects<V1Pod>("Pod").filter((p) => p.metadata?.namespace === MOUNTPOINT_NAMESPACE);
const attachments = (api: FakeKubeApi) => api.objects<Attachment>("MountpointS3PodAttachment");

/** The node's last unpublish ends the session of every Mountpoint Pod no attachment lists. */
async function endSessions(w: World) {
  const listed = new Set(
    attachments(w.api).flatMap((a) => Object.keys(a.spec.mountpointS3PodAttachments)),
  );
  for (const p of mountpointPods(w.api)) {
    if (listed.has(p.metadata!.name!)) continue;
    await w.api.update(RESOURCES.pod, { ...p, status: { phase: "Succeeded" } });
  }
  await w.clock.advance(0);
}
/** Creates asked of the API, refused ones included. */
const creates = (api: FakeKubeApi, what: string) =>
  api.attempts.filter((w) => w.startsWith(`create ${what}`)).length;

Deno.test("reconciler: two workloads of one key share one Mountpoint Pod and attachment", async () => {
  const { api, clock } = await cluster();
  const w = await start(api, clock);
  const u1 = await addWorkload(w, "w1");
  const u2 = await addWorkload(w, "w2");
  const [att] = attachments(api);
  assert.equal(attachments(api).length, 1);
  assert.deepEqual(workloadUids(att), new Set([u1, u2]));
  const pods = mountpointPods(api);
  assert.equal(pods.length, 1);
  assert.deepEqual(Object.keys(att.spec.mountpointS3PodAttachments), [pods[0].metadata!.name]);
  assert.equal(att.spec.persistentVolumeName, "pv-a");
  assert.equal(att.spec.volumeID, "vol-a");
  assert.equal(pods[0].spec?.nodeName, "n1");
  await w.stop();
});

Deno.test("reconciler: a workload with another fsGroup gets its own pod and attachment", async () => {
  const { api, clock } = await cluster();
  const w = await start(api, clock);
  await addWorkload(w, "w1");
  await addWorkload(w, "w2", { fsGroup: 2000 });
  assert.equal(mountpointPods(api).length, 2);
  const groups = attachments(api).map((a) => a.spec.workloadFSGroup).sort();
  assert.deepEqual(groups, ["", "2000"]);
  await w.stop();
});

Deno.test("reconciler: workloads that go are removed; then the pod and the attachment go", async () => {
  const { api, clock } = await cluster();
  const w = await start(api, clock);
  await addWorkload(w, "w1");
  const u2 = await addWorkload(w, "w2");
  await removeWorkload(w, "w1");
  assert.deepEqual(workloadUids(attachments(api)[0]), new Set([u2]));
  assert.equal(mountpointPods(api).length, 1);
  // A finished workload counts as gone.
  const p = (await api.get<V1Pod>(RESOURCES.pod, "w2", "apps"))!;
  await api.update(RESOURCES.pod, { ...p, status: { phase: "Succeeded" } });
  await clock.advance(0);
  assert.deepEqual(attachments(api), []);
  assert.equal(mountpointPods(api).length, 1, "kept until the unpublish ends its session");
  await endSessions(w);
  assert.deepEqual(mountpointPods(api), []);
  await w.stop();
});

Deno.test("reconciler: a lagging cache does not make a second pod or attachment", async () => {
  const { api, clock } = await cluster();
  const w = await start(api, clock);
  // The reconciler's own writes stay invisible to its informers for now.
  api.hold("Pod", MOUNTPOINT_NAMESPACE);
  api.hold("MountpointS3PodAttachment");
  const u1 = await addWorkload(w, "w1");
  const u2 = await addWorkload(w, "w2");
  await clock.advance(30_000); // the sweep runs, the fallback re-queues fire
  assert.equal(creates(api, "Pod mount-s3/"), 1);
  assert.equal(creates(api, "MountpointS3PodAttachment"), 1);
  api.release("Pod", MOUNTPOINT_NAMESPACE);
  api.release("MountpointS3PodAttachment");
  await clock.advance(2000);
  assert.equal(mountpointPods(api).length, 1);
  assert.deepEqual(workloadUids(attachments(api)[0]), new Set([u1, u2]));
  await w.stop();
});

Deno.test("reconciler: conflicts are retried on fresh state and converge", async () => {
  const { api, clock } = await cluster();
  const w = await start(api, clock);
  const u1 = await addWorkload(w, "w1");
  api.failNext("update", "MountpointS3PodAttachment", new AbortedError("modified"));
  api.failNext("update", "MountpointS3PodAttachment", new AbortedError("modified"));
  const u2 = await addWorkload(w, "w2");
  assert.deepEqual(workloadUids(attachments(api)[0]), new Set([u1]), "not yet");
  await clock.advance(100 + 200);
  assert.deepEqual(workloadUids(attachments(api)[0]), new Set([u1, u2]));
  // Someone else changed the attachment under us: the stale update is a real 409.
  const att = attachments(api)[0];
  await api.update(RESOURCES.attachment, { ...att, metadata: { ...att.metadata } });
  api.failNext("create", "Pod", new AlreadyExistsError("exists"));
  await removeWorkload(w, "w1");
  await clock.advance(1000);
  assert.deepEqual(workloadUids(attachments(api)[0]), new Set([u2]));
  assert.equal(mountpointPods(api).length, 1);
  await w.stop();
});

Deno.test("reconciler: a broken watch is restarted and later changes are seen", async () => {
  const { api, clock } = await cluster();
  const w = await start(api, clock);
  api.breakWatches("Pod", new Error("connection reset"));
  assert.equal(api.watchCount("Pod"), 0);
  await clock.advance(1000);
  assert.equal(api.watchCount("Pod"), 2, "both pod informers watch again");
  await addWorkload(w, "w1");
  assert.equal(mountpointPods(api).length, 1);
  await w.stop();
});

Deno.test("reconciler: a Mountpoint Pod of another version is not reused, and goes with its workloads", async () => {
  const { api, clock } = await cluster();
  const old = await start(api, clock, "0.9.0");
  await addWorkload(old, "w1");
  await old.stop();
  const w = await start(api, clock, "1.0.0");
  const u2 = await addWorkload(w, "w2");
  const versions = mountpointPods(api).map((p) => p.metadata?.labels?.[LABEL_VERSION]).sort();
  assert.deepEqual(versions, ["0.9.0", "1.0.0"]);
  await removeWorkload(w, "w1");
  await endSessions(w);
  assert.deepEqual(mountpointPods(api).map((p) => p.metadata?.labels?.[LABEL_VERSION]), ["1.0.0"]);
  assert.deepEqual(workloadUids(attachments(api)[0]), new Set([u2]));
  await w.stop();
});

Deno.test("reconciler: --upgrade-mountpoint-pods replaces old-version pods under their names, one per node at a time", async () => {
  const { api, clock } = await cluster();
  const old = await start(api, clock, "0.9.0");
  await addWorkload(old, "w1");
  await addWorkload(old, "w2", { fsGroup: 2000 });
  await old.stop();
  const serving = async () => {
    for (const p of mountpointPods(api)) {
      if (p.status?.phase === "Running") continue;
      const status = { phase: "Running", conditions: [{ type: "Ready", status: "True" }] };
      await api.update(RESOURCES.pod, { ...p, status });
    }
  };
  await serving();
  const names = mountpointPods(api).map((p) => p.metadata!.name!).sort();
  const versions = () =>
    mountpointPods(api).map((p) => `${p.metadata!.name}@${p.metadata!.labels![LABEL_VERSION]}`)
      .sort();
  const r = new Reconciler({ ...testConfig(api, clock, "1.0.0"), upgradeMountpointPods: true });
  const ac = new AbortController();
  const running = r.run(ac.signal);
  await clock.advance(0);
  const first = versions();
  assert.equal(first.filter((v) => v.endsWith("@1.0.0")).length, 1, `one replaced: ${first}`);
  assert.deepEqual(first.map((v) => v.split("@")[0]), names, "under the same names");
  // The new pod has not started: the next waits, whatever the time.
  await clock.advance(30_000);
  assert.deepEqual(versions(), first);
  await serving();
  await clock.advance(10_000);
  assert.deepEqual(versions(), names.map((n) => `${n}@1.0.0`));
  assert.equal(attachments(api).length, 2, "the attachments are kept");
  ac.abort();
  await running;
});

Deno.test("reconciler: a deleted node's attachments and Mountpoint Pods are cleaned", async () => {
  const { api, clock } = await cluster();
  const w = await start(api, clock);
  await addWorkload(w, "w1");
  assert.equal(mountpointPods(api).length, 1);
  await api.delete(RESOURCES.node, "n1");
  await clock.advance(0);
  assert.deepEqual(mountpointPods(api), []);
  assert.deepEqual(attachments(api), []);
  await w.stop();
});

Deno.test("reconciler: a deletion lost with an expired watch is found by the relist", async () => {
  const { api, clock } = await cluster();
  const w = await start(api, clock);
  await addWorkload(w, "w1");
  // The watch never delivers the deletion; it ends with 410 Gone and the informer lists again.
  api.hold("Pod", "apps");
  await api.delete(RESOURCES.pod, "w1", "apps");
  assert.equal(mountpointPods(api).length, 1);
  api.breakWatches("Pod", { code: 410 } as unknown as KubernetesObject);
  await clock.advance(30_000);
  assert.deepEqual(attachments(api), []);
  api.release("Pod", "apps");
  await endSessions(w);
  assert.deepEqual(mountpointPods(api), []);
  await w.stop();
});

Deno.test("reconciler: a workload seen before its node gets its pod when the node appears", async () => {
  const { api, clock } = await cluster();
  await api.delete(RESOURCES.node, "n1");
  const w = await start(api, clock);
  await addWorkload(w, "w1");
  assert.deepEqual(mountpointPods(api), [], "no pods on a node that does not exist");
  await api.create(RESOURCES.node, node("n1"));
  await clock.advance(0);
  assert.equal(mountpointPods(api).length, 1);
  await w.stop();
});

Deno.test("reconciler: a watch that goes silent without ending is replaced, and sees what it missed", async () => {
  const { api, clock } = await cluster();
  const w = await start(api, clock);
  // The pod watches' streams stop delivering and never end on their own.
  api.stallWatches("Pod");
  await api.create(RESOURCES.pod, workload("w1", "claim-a", "n1"));
  await clock.advance(0);
  assert.equal(mountpointPods(api).length, 0, "the informers have not seen the workload");
  // Past the longest server-side timeout (2 × 30 s) and the grace, the watch is taken for dead.
  await clock.advance(60_000 + WATCH_GRACE_MS + 1000);
  await clock.advance(1000);
  assert.equal(mountpointPods(api).length, 1, "the new watch saw the workload");
  await w.stop();
});

Deno.test("reconciler: its metrics count the Mountpoint Pods and attachments it holds and its runs", async () => {
  const gauge = async (name: string) =>
    (await registry.getSingleMetric(name)!.get()).values.reduce((s, v) => s + v.value, 0);
  const okRuns = async () =>
    (await reconciles.get()).values.find((v) => v.labels.result === "ok")?.value ?? 0;
  const { api, clock } = await cluster();
  const w = await start(api, clock);
  const runsBefore = await okRuns();
  await addWorkload(w, "w1");
  await addWorkload(w, "w2", { fsGroup: 2000 });
  assert.equal(await gauge("s3csi_mountpoint_pods"), 2);
  assert.equal(await gauge("s3csi_attachments"), 2);
  assert.equal(await gauge("s3csi_reconciler_queue_depth"), 0, "nothing left to do");
  assert.ok(await okRuns() > runsBefore);
  await w.stop();
  assert.equal(await gauge("s3csi_mountpoint_pods"), 0, "a stopped reconciler reports nothing");
});
