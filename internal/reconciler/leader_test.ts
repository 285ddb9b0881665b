import assert from "node:assert/strict";
import type { KubernetesObject, V1Lease, V1Pod } from "@kubernetes/client-node";
import { UnavailableError } from "../errors/mod.ts";
import { type Attachment, type KubeApi, RESOURCES, workloadUids } from "../kube/mod.ts";
import { FakeKubeApi } from "../kube/fake_api.ts";
import { MOUNTPOINT_NAMESPACE } from "../podmount/contract.ts";
import { FakeClock } from "./clock.ts";
import { Reconciler } from "./controller.ts";
import { LeaderElector, leaderIdentity } from "./leader.ts";
import { node, pv, pvc, quietLog, testConfig, workload } from "./testing.ts";

const LEASE_MS = 15_000;

/** An API a replica loses all contact with when it "dies" (crash or partition). */
function severable(api: KubeApi): { api: KubeApi; sever(): void } {
  let dead = false;
  const guard = <T>(fn: () => Promise<T>) =>
    dead ? Promise.reject(new UnavailableError("connection refused")) : fn();
  return {
    sever: () => dead = true,
    api: {
      list: (r, o) => guard(() => api.list(r, o)),
      watch: (r, o, ev, done) =>
        guard(() => api.watch(r, o, (t, obj) => !dead && ev(t, obj), done)),
      get: (r, n, ns) => guard(() => api.get(r, n, ns)),
      create: <T extends KubernetesObject>(r: typeof RESOURCES.pod, o: T) =>
        guard(() => api.create(r, o)),
      update: <T extends KubernetesObject>(r: typeof RESOURCES.pod, o: T) =>
        guard(() => api.update(r, o)),
      delete: (r, n, ns, uid) => guard(() => api.delete(r, n, ns, uid)),
    },
  };
}

function elector(api: KubeApi, clock: FakeClock, identity: string): LeaderElector {
  return new LeaderElector({
    api,
    clock,
    log: quietLog,
    namespace: "s3csi",
    name: "s3csi-reconciler",
    identity,
    leaseDurationMs: LEASE_MS,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
  });
}

Deno.test("leader: one of two candidates leads; the other takes over within the lease when it dies", async () => {
  const api = new FakeKubeApi();
  const clock = new FakeClock();
  const a = severable(api);
  const events: string[] = [];
  const leading = (who: string) => (signal: AbortSignal) => {
    events.push(`${who} starts at ${clock.now()}`);
    return new Promise<void>((r) =>
      signal.addEventListener("abort", () => {
        events.push(`${who} stops at ${clock.now()}`);
        r();
      })
    );
  };
  const stopA = new AbortController();
  const stopB = new AbortController();
  const ea = elector(a.api, clock, "a");
  const eb = elector(api, clock, "b");
  const runA = ea.run(stopA.signal, leading("a"));
  await clock.advance(0);
  const runB = eb.run(stopB.signal, leading("b"));
  await clock.advance(30_000);
  assert.deepEqual([ea.isLeader, eb.isLeader], [true, false], "b waits while a renews");
  const t0 = clock.now();
  a.sever();
  await clock.advance(LEASE_MS + 2_000);
  assert.deepEqual([ea.isLeader, eb.isLeader], [false, true]);
  const start = (who: string) =>
    Number(events.find((e) => e.startsWith(`${who} starts`))!.split(" at ")[1]);
  const stop = (who: string) =>
    Number(events.find((e) => e.startsWith(`${who} stops`))!.split(" at ")[1]);
  assert.ok(start("b") - t0 <= LEASE_MS + 2_000, `b took over ${start("b") - t0} ms after a died`);
  assert.ok(stop("a") < start("b"), "a stopped (renew deadline) before b started: no overlap");
  const lease = (await api.get<V1Lease>(RESOURCES.lease, "s3csi-reconciler", "s3csi"))!;
  assert.equal(lease.spec?.holderIdentity, "b");
  assert.equal(lease.spec?.leaseTransitions, 1);
  stopA.abort();
  stopB.abort();
  await clock.advance(0);
  await Promise.all([runA, runB]);
});

Deno.test("leader: on shutdown the leader releases the lease and the other takes over at once", async () => {
  const api = new FakeKubeApi();
  const clock = new FakeClock();
  const stopA = new AbortController();
  const stopB = new AbortController();
  const ea = elector(api, clock, "a");
  const eb = elector(api, clock, "b");
  const idle = (signal: AbortSignal) =>
    new Promise<void>((r) => signal.addEventListener("abort", () => r()));
  const runA = ea.run(stopA.signal, idle);
  await clock.advance(0);
  const runB = eb.run(stopB.signal, idle);
  await clock.advance(4_000);
  stopA.abort();
  await runA;
  const lease = (await api.get<V1Lease>(RESOURCES.lease, "s3csi-reconciler", "s3csi"))!;
  assert.equal(lease.spec?.holderIdentity, "");
  await clock.advance(2_000);
  assert.ok(eb.isLeader, "one retry period, not a lease duration");
  stopB.abort();
  await clock.advance(0);
  await runB;
});

Deno.test("leaderIdentity() names the pod (else the host) and is unique per process", () => {
  const a = leaderIdentity("reconciler-0");
  assert.match(a, /^reconciler-0_[0-9a-f]{8}$/);
  assert.notEqual(leaderIdentity("reconciler-0"), a, "a restarted process is another candidate");
  assert.match(leaderIdentity(undefined, () => "host-1"), /^host-1_[0-9a-f]{8}$/);
});

Deno.test("leader: a process restarted in the same pod waits out its killed predecessor's lease", async () => {
  const api = new FakeKubeApi();
  const clock = new FakeClock();
  const first = severable(api);
  const idle = (signal: AbortSignal) =>
    new Promise<void>((r) => signal.addEventListener("abort", () => r()));
  const stopFirst = new AbortController();
  const e1 = elector(first.api, clock, leaderIdentity("reconciler-0"));
  const run1 = e1.run(stopFirst.signal, idle);
  await clock.advance(0);
  assert.ok(e1.isLeader);
  first.sever(); // SIGKILL: no release
  const stopSecond = new AbortController();
  const e2 = elector(api, clock, leaderIdentity("reconciler-0"));
  const run2 = e2.run(stopSecond.signal, idle);
  await clock.advance(LEASE_MS - 2_000);
  assert.ok(!e2.isLeader, "the dead process's lease is not the new one's to renew");
  await clock.advance(4_000);
  assert.ok(e2.isLeader, "taken over once the lease ran out");
  stopFirst.abort();
  stopSecond.abort();
  await clock.advance(0);
  await Promise.all([run1, run2]);
});

Deno.test("leader: two reconciler replicas make no duplicates across a hand-over", async () => {
  const api = new FakeKubeApi();
  const clock = new FakeClock();
  await api.create(RESOURCES.node, node("n1"));
  await api.create(RESOURCES.persistentVolume, pv("pv-a", "vol-a"));
  await api.create(RESOURCES.persistentVolumeClaim, pvc("apps", "claim-a", "pv-a"));
  const a = severable(api);
  const replica = (kapi: KubeApi, id: string, stop: AbortSignal) =>
    elector(kapi, clock, id).run(stop, (s) => new Reconciler(testConfig(kapi, clock)).run(s));
  const stopA = new AbortController();
  const stopB = new AbortController();
  const runA = replica(a.api, "a", stopA.signal);
  await clock.advance(0);
  const runB = replica(api, "b", stopB.signal);
  await api.create(RESOURCES.pod, workload("w1", "claim-a", "n1"));
  await clock.advance(5_000);
  a.sever();
  await api.create(RESOURCES.pod, workload("w2", "claim-a", "n1"));
  await clock.advance(LEASE_MS + 5_000);
  const pods = api.objects<V1Pod>("Pod").filter((p) =>
    p.metadata?.namespace === MOUNTPOINT_NAMESPACE
  );
  assert.equal(pods.length, 1);
  const atts = api.objects<Attachment>("MountpointS3PodAttachment");
  assert.equal(atts.length, 1);
  assert.equal(workloadUids(atts[0]).size, 2, "b recorded the workload that came after a died");
  assert.equal(api.writes.filter((w) => w.startsWith("create Pod mount-s3/")).length, 1);
  stopA.abort();
  stopB.abort();
  await clock.advance(0);
  await Promise.all([runA, runB]);
});
