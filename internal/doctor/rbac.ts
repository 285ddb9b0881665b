/**
 * The Kubernetes permissions each role of the driver needs, as data: what
 * `cluster.rbac.*` asks the API about (one SelfSubjectAccessReview per verb,
 * acting as the role's service account). It is the RBAC of
 * `deploy/kubernetes/base/rbac*.yaml` written once more, on purpose: the
 * doctor must not need the manifests at run time, and `rbac_test.ts` checks
 * that the two say the same.
 *
 * `scope` says where a permission is needed: cluster-wide (ClusterRole),
 * in the driver's namespace (`--namespace`, s3csi by default) or in the
 * Mountpoint Pods' namespace.
 *
 * @module
 */
import { GROUP, MOUNTPOINT_NAMESPACE } from "../podmount/contract.ts";

export interface Permission {
  /** API group, "" for the core group. */
  group: string;
  resource: string;
  verbs: readonly string[];
  scope: "cluster" | "driver" | "mountpoint";
}

export interface RoleRbac {
  /** Names the check: `cluster.rbac.<role>`. */
  role: "node" | "controller";
  serviceAccount: string;
  permissions: readonly Permission[];
}

const READ = ["get", "list", "watch"] as const;
const ATTACHMENTS = "mountpoints3podattachments";

export const DRIVER_RBAC: readonly RoleRbac[] = [
  {
    role: "node",
    serviceAccount: "s3csi-node",
    permissions: [
      // The startup taint: read its Node, patch the taint away.
      { group: "", resource: "nodes", verbs: ["get", "patch"], scope: "cluster" },
      // The pod mounter: attachments, and the Mountpoint Pod they name.
      { group: GROUP, resource: ATTACHMENTS, verbs: READ, scope: "cluster" },
      { group: "", resource: "pods", verbs: ["get"], scope: "mountpoint" },
    ],
  },
  {
    // The controller pods' account: csi-provisioner, the reconciler, their leases.
    role: "controller",
    serviceAccount: "s3csi-controller",
    permissions: [
      {
        group: "",
        resource: "persistentvolumes",
        verbs: [...READ, "create", "patch", "delete"],
        scope: "cluster",
      },
      {
        group: "",
        resource: "persistentvolumeclaims",
        verbs: [...READ, "update"],
        scope: "cluster",
      },
      { group: "storage.k8s.io", resource: "storageclasses", verbs: READ, scope: "cluster" },
      { group: "", resource: "events", verbs: ["create", "update", "patch"], scope: "cluster" },
      { group: "storage.k8s.io", resource: "csinodes", verbs: READ, scope: "cluster" },
      { group: "", resource: "nodes", verbs: READ, scope: "cluster" },
      { group: "", resource: "secrets", verbs: ["get"], scope: "cluster" },
      {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: [...READ, "create", "update", "delete"],
        scope: "driver",
      },
      { group: "", resource: "pods", verbs: READ, scope: "cluster" },
      {
        group: GROUP,
        resource: ATTACHMENTS,
        verbs: [...READ, "create", "update", "delete"],
        scope: "cluster",
      },
      { group: "", resource: "pods", verbs: ["create", "delete"], scope: "mountpoint" },
    ],
  },
];

/** The namespace of a permission's reviews; undefined for cluster-wide ones. */
export function scopeNamespace(p: Permission, driverNamespace: string): string | undefined {
  if (p.scope === "driver") return driverNamespace;
  if (p.scope === "mountpoint") return MOUNTPOINT_NAMESPACE;
  return undefined;
}
