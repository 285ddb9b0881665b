import assert from "node:assert/strict";
import { type KubernetesObject, loadAllYaml } from "@kubernetes/client-node";
import { FakeKubeApi } from "../kube/fake_api.ts";
import { RESOURCES } from "../kube/api.ts";
import { AGENT_NOT_READY_TAINT, MOUNTPOINT_NAMESPACE } from "../podmount/contract.ts";
import { DRIVER_NAME } from "../version.ts";
import { type Result, runChecks } from "./check.ts";
import { clusterChecks, EXPECTED_CSIDRIVER } from "./cluster_checks.ts";

const BASE = new URL("../../deploy/kubernetes/base/", import.meta.url);
// deno-lint-ignore no-explicit-any
type Obj = KubernetesObject & Record<string, any>;

function manifests(file: string): Obj[] {
  return loadAllYaml(Deno.readTextFileSync(new URL(file, BASE))) as Obj[];
}

/** A cluster as deploy/kubernetes/base makes it, where every access review is allowed. */
async function installed(): Promise<{ api: FakeKubeApi; asked: string[] }> {
  const api = new FakeKubeApi();
  for (const ns of manifests("namespace.yaml")) await api.create(RESOURCES.namespace, ns);
  await api.create(RESOURCES.csiDriver, manifests("csidriver.yaml")[0]!);
  const crd = manifests("crd.yaml")[0]!;
  crd.status = { conditions: [{ type: "Established", status: "True" }] };
  await api.create(RESOURCES.crd, crd);
  await api.create(RESOURCES.node, { apiVersion: "v1", kind: "Node", metadata: { name: "n1" } });
  for (const [name, image] of [["node-a", "s3csi:1"], ["ctrl-a", "s3csi:1"]]) {
    await api.create(RESOURCES.pod, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "s3csi", labels: { "app.kubernetes.io/name": "s3csi" } },
      spec: { containers: [{ name: "s3csi", image }, { name: "liveness-probe", image: "lp:2" }] },
      status: { phase: "Running" },
    } as Obj);
  }
  const asked: string[] = [];
  api.answer(RESOURCES.selfSubjectAccessReview.kind, (obj) => {
    const o = obj as Obj;
    const a = o.spec.resourceAttributes;
    asked.push(`${a.verb} ${a.resource}`);
    return { ...o, status: { allowed: true } } as Obj;
  });
  return { api, asked };
}

async function run(api: FakeKubeApi, as = (_user: string) => api): Promise<Map<string, Result>> {
  const results = await runChecks(clusterChecks({ api, as, namespace: "s3csi", nodeName: "n1" }));
  return new Map(results.map((r) => [r.id, r]));
}

Deno.test("clusterChecks() are all ok on a cluster installed from deploy/kubernetes/base", async () => {
  const { api, asked } = await installed();
  const r = await run(api);
  for (const [id, result] of r) assert.equal(result.verdict, "ok", `${id}: ${result.reason}`);
  assert.match(r.get("cluster.images")!.reason, /2 driver pods run s3csi:1 \(2\)/);
  assert.ok(asked.includes("patch nodes") && asked.includes("create pods"));
});

Deno.test("cluster.crd fails when the CRD is missing, and when it is not Established", async () => {
  const { api } = await installed();
  const name = "mountpoints3podattachments.s3.csi.scality.com";
  const crd = (await api.get<Obj>(RESOURCES.crd, name))!;
  await api.update(RESOURCES.crd, { ...crd, status: { conditions: [] } });
  let r = (await run(api)).get("cluster.crd")!;
  assert.equal(r.verdict, "failed");
  assert.match(r.reason, /is not Established/);
  await api.delete(RESOURCES.crd, name);
  r = (await run(api)).get("cluster.crd")!;
  assert.equal(r.verdict, "failed");
  assert.match(r.reason, /CRD "mountpoints3podattachments\.s3\.csi\.scality\.com" does not exist/);
  assert.match(r.action!, /kubectl apply -k deploy\/kubernetes\/base/);
});

Deno.test("cluster.csidriver fails on attachRequired true and names the field", async () => {
  const { api } = await installed();
  const d = (await api.get<Obj>(RESOURCES.csiDriver, DRIVER_NAME))!;
  await api.update(RESOURCES.csiDriver, { ...d, spec: { ...d.spec, attachRequired: true } });
  const r = (await run(api)).get("cluster.csidriver")!;
  assert.equal(r.verdict, "failed");
  assert.match(r.reason, /attachRequired is true, not false/);
});

Deno.test("cluster.rbac.* fail naming each permission the account lacks", async () => {
  const { api } = await installed();
  api.answer(RESOURCES.selfSubjectAccessReview.kind, (obj) => {
    const o = obj as Obj;
    const a = o.spec.resourceAttributes;
    return { ...o, status: { allowed: !(a.verb === "patch" && a.resource === "nodes") } } as Obj;
  });
  const users: string[] = [];
  const r = await run(api, (user) => {
    users.push(user);
    return api;
  });
  assert.equal(r.get("cluster.rbac.node")!.verdict, "failed");
  assert.match(r.get("cluster.rbac.node")!.reason, /^s3csi-node may not: patch nodes$/);
  assert.equal(r.get("cluster.rbac.controller")!.verdict, "ok");
  assert.deepEqual(users, [
    "system:serviceaccount:s3csi:s3csi-node",
    "system:serviceaccount:s3csi:s3csi-controller",
  ]);
});

Deno.test("cluster.node-taint warns while the node still has the startup taint", async () => {
  const { api } = await installed();
  const n = (await api.get<Obj>(RESOURCES.node, "n1"))!;
  await api.update(RESOURCES.node, {
    ...n,
    spec: { taints: [{ key: AGENT_NOT_READY_TAINT, effect: "NoExecute" }] },
  });
  const r = (await run(api)).get("cluster.node-taint")!;
  assert.equal(r.verdict, "warning");
  assert.match(r.reason, /agent-not-ready:NoExecute: its node plugin does not serve yet/);
});

Deno.test("cluster.mountpoint-namespace warns when mount-s3 does not enforce restricted", async () => {
  const { api } = await installed();
  const ns = (await api.get<Obj>(RESOURCES.namespace, MOUNTPOINT_NAMESPACE))!;
  ns.metadata!.labels!["pod-security.kubernetes.io/enforce"] = "privileged";
  await api.update(RESOURCES.namespace, ns);
  const r = (await run(api)).get("cluster.mountpoint-namespace")!;
  assert.equal(r.verdict, "warning");
  assert.match(r.reason, /enforces Pod Security "privileged", not "restricted"/);
});

Deno.test("cluster.images warns when driver pods run different images", async () => {
  const { api } = await installed();
  const p = (await api.get<Obj>(RESOURCES.pod, "node-a", "s3csi"))!;
  p.spec.containers[0].image = "s3csi:2";
  await api.update(RESOURCES.pod, p);
  const r = (await run(api)).get("cluster.images")!;
  assert.equal(r.verdict, "warning");
  assert.match(
    r.reason,
    /different images: s3csi:2 \(1\), s3csi:1 \(1\)|s3csi:1 \(1\), s3csi:2 \(1\)/,
  );
});

Deno.test("cluster.api fails when the driver's namespace is missing, and the rest are skipped", async () => {
  const r = await run(new FakeKubeApi());
  assert.equal(r.get("cluster.api")!.verdict, "failed");
  assert.match(r.get("cluster.api")!.reason, /namespace "s3csi" does not exist/);
  assert.equal(r.get("cluster.crd")!.skipped, true);
});

Deno.test("EXPECTED_CSIDRIVER holds the values of deploy/kubernetes/base/csidriver.yaml", () => {
  const spec = manifests("csidriver.yaml")[0]!.spec;
  for (const [field, want] of Object.entries(EXPECTED_CSIDRIVER)) {
    assert.equal(spec[field], want.value, field);
  }
});
