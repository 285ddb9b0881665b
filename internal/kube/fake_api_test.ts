import assert from "node:assert/strict";
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import { AbortedError, AlreadyExistsError } from "../errors/mod.ts";
import { apiError, collectionPath, isConflict, RESOURCES } from "./api.ts";
import { FakeKubeApi, matchesSelector } from "./fake_api.ts";

const pod = (name: string, labels: Record<string, string> = {}): V1Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "ns", labels },
});

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("fake api: resourceVersions advance; a stale update is a conflict", async () => {
  const api = new FakeKubeApi();
  const a = await api.create(RESOURCES.pod, pod("a"));
  await assert.rejects(api.create(RESOURCES.pod, pod("a")), AlreadyExistsError);
  const b = await api.update(RESOURCES.pod, {
    ...a,
    metadata: { ...a.metadata, labels: { x: "1" } },
  });
  assert.ok(Number(b.metadata!.resourceVersion) > Number(a.metadata!.resourceVersion));
  assert.equal(b.metadata!.uid, a.metadata!.uid);
  await assert.rejects(api.update(RESOURCES.pod, a), AbortedError);
  await assert.rejects(api.delete(RESOURCES.pod, "a", "ns", "other-uid"), AbortedError);
  await api.delete(RESOURCES.pod, "a", "ns", a.metadata!.uid);
  await api.delete(RESOURCES.pod, "a", "ns");
  assert.equal(await api.get(RESOURCES.pod, "a", "ns"), undefined);
});

Deno.test("fake api: watches replay from a resourceVersion and can be held back", async () => {
  const api = new FakeKubeApi();
  await api.create(RESOURCES.pod, pod("a", { app: "x" }));
  const { resourceVersion } = await api.list(RESOURCES.pod);
  await api.create(RESOURCES.pod, pod("b", { app: "x" }));
  await api.create(RESOURCES.pod, pod("c", { app: "y" }));
  const seen: string[] = [];
  const on = (t: string, o: KubernetesObject) => seen.push(`${t} ${o.metadata?.name}`);
  await api.watch(RESOURCES.pod, { resourceVersion, labelSelector: "app=x" }, on, () => {});
  await tick();
  assert.deepEqual(seen, ["ADDED b"]);
  api.hold("Pod");
  await api.delete(RESOURCES.pod, "b", "ns");
  await tick();
  assert.deepEqual(seen, ["ADDED b"]);
  api.release("Pod");
  await tick();
  assert.deepEqual(seen, ["ADDED b", "DELETED b"]);
});

Deno.test("label selectors: equality, inequality and existence", () => {
  const labels = { a: "1", b: "2" };
  assert.ok(matchesSelector(labels, "a=1,b==2"));
  assert.ok(!matchesSelector(labels, "a=1,b=3"));
  assert.ok(matchesSelector(labels, "a!=2"));
  assert.ok(matchesSelector(labels, "b"));
  assert.ok(!matchesSelector(labels, "c"));
  assert.ok(matchesSelector(undefined, ""));
});

Deno.test("api errors: HTTP statuses map to domain errors once", () => {
  assert.equal(apiError(404, "x").kind, "not_found");
  assert.equal(apiError(409, "x", "AlreadyExists").kind, "already_exists");
  assert.equal(apiError(409, "x", "Conflict").kind, "aborted");
  assert.equal(apiError(403, "x").kind, "permission_denied");
  assert.equal(apiError(422, "x").kind, "invalid_argument");
  assert.equal(apiError(503, "x").kind, "unavailable");
  assert.ok(isConflict(apiError(409, "x")) && !isConflict(apiError(500, "x")));
  assert.equal(collectionPath(RESOURCES.pod), "/api/v1/pods");
  assert.equal(
    collectionPath(RESOURCES.lease, "s3csi"),
    "/apis/coordination.k8s.io/v1/namespaces/s3csi/leases",
  );
  assert.equal(
    collectionPath(RESOURCES.attachment, "ignored"),
    "/apis/s3.csi.scality.com/v1/mountpoints3podattachments",
  );
});
