import assert from "node:assert/strict";
import { loadAllYaml } from "@kubernetes/client-node";
import { DRIVER_RBAC, scopeNamespace } from "./rbac.ts";

const BASE = new URL("../../deploy/kubernetes/base/", import.meta.url);
// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

/** "sa verb group/resource namespace" for every permission the manifests grant to an account. */
function granted(): Set<string> {
  const docs = ["rbac.yaml", "rbac_reconciler.yaml"].flatMap((f) =>
    loadAllYaml(Deno.readTextFileSync(new URL(f, BASE))) as Obj[]
  );
  const roles = new Map<string, Obj>();
  for (const d of docs) {
    if (d.kind === "Role" || d.kind === "ClusterRole") {
      roles.set(`${d.kind}/${d.metadata.namespace ?? ""}/${d.metadata.name}`, d);
    }
  }
  const out = new Set<string>();
  for (const b of docs.filter((d) => d.kind === "RoleBinding" || d.kind === "ClusterRoleBinding")) {
    const ns = b.kind === "RoleBinding" ? b.metadata.namespace : "";
    const role = roles.get(`${b.roleRef.kind}/${ns}/${b.roleRef.name}`);
    assert.ok(role, `${b.metadata.name}: its role is in the manifests`);
    for (const s of b.subjects) {
      for (const rule of role.rules) {
        for (const group of rule.apiGroups) {
          for (const resource of rule.resources) {
            for (const verb of rule.verbs) out.add(`${s.name} ${verb} ${group}/${resource} ${ns}`);
          }
        }
      }
    }
  }
  return out;
}

Deno.test("DRIVER_RBAC asks for exactly what deploy/kubernetes/base grants each account", () => {
  const wanted = new Set<string>();
  for (const role of DRIVER_RBAC) {
    for (const p of role.permissions) {
      const ns = scopeNamespace(p, "s3csi") ?? "";
      for (const verb of p.verbs) {
        wanted.add(`${role.serviceAccount} ${verb} ${p.group}/${p.resource} ${ns}`);
      }
    }
  }
  assert.deepEqual([...wanted].sort(), [...granted()].sort());
});
