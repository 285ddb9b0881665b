/**
 * Checks of the cluster the driver runs in, through `KubeApi` (so they run
 * against the in-memory fake in unit tests):
 *
 * - `cluster.api`: the API server answers, and the driver's namespace exists.
 * - `cluster.csidriver`: the CSIDriver object exists with the fields the
 *   driver relies on (`EXPECTED_CSIDRIVER`, checked against the manifest by
 *   the unit test).
 * - `cluster.crd`: the attachment CRD exists, serves v1 and is Established.
 * - `cluster.rbac.<role>`: every permission of `DRIVER_RBAC`, asked as the
 *   role's service account (SelfSubjectAccessReview through impersonation,
 *   so an administrator learns what the driver may do, not what they may).
 * - `cluster.node-taint`: this node's startup taint is gone (the node plugin
 *   serves); present, workloads using the driver are not scheduled here.
 * - `cluster.mountpoint-namespace`: the Mountpoint Pods' namespace exists and
 *   enforces the `restricted` Pod Security level.
 * - `cluster.images`: the images the driver's pods run; different images
 *   (a rollout in progress or stuck) are a warning.
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { type KubeApi, RESOURCES } from "../kube/api.ts";
import { errorMessage, PermissionDeniedError } from "../errors/mod.ts";
import { AGENT_NOT_READY_TAINT, ATTACHMENT, MOUNTPOINT_NAMESPACE } from "../podmount/contract.ts";
import { DRIVER_NAME } from "../version.ts";
import { type Check, failed, type Finding, ok, warning } from "./check.ts";
import { DRIVER_RBAC, type RoleRbac, scopeNamespace } from "./rbac.ts";

export interface ClusterOptions {
  api: KubeApi;
  /** The API acting as `user` (impersonation), for the access reviews. */
  as(user: string): KubeApi;
  /** The driver's namespace. */
  namespace: string;
  /** This node's name, for its taint; the check warns without it. */
  nodeName?: string;
}

/** The CSIDriver fields the driver relies on, and how much a different value matters. */
export const EXPECTED_CSIDRIVER = {
  // A bucket is never attached: with true, pods wait forever for a VolumeAttachment.
  attachRequired: { value: false, else: "failed" },
  // The pod mounter needs the workload pod's identity.
  podInfoOnMount: { value: true, else: "failed" },
  // Republish is how rotated node-publish secrets reach running mounts.
  requiresRepublish: { value: true, else: "warning" },
  // Ownership is a mount option; "File" makes kubelet chown through FUSE, which fails.
  fsGroupPolicy: { value: "None", else: "warning" },
} as const;

const DRIVER_LABELS = "app.kubernetes.io/name=s3csi";
/** The containers that run the s3csi image (the others are Kubernetes sidecars). */
const DRIVER_CONTAINERS = new Set(["s3csi", "reconciler"]);

// deno-lint-ignore no-explicit-any
type Obj = KubernetesObject & Record<string, any>;

export function clusterChecks(o: ClusterOptions): Check[] {
  const needs = ["cluster.api"];
  return [
    {
      id: "cluster.api",
      group: "cluster",
      title: "The API server answers",
      run: () => apiCheck(o),
    },
    {
      id: "cluster.csidriver",
      group: "cluster",
      title: `The CSIDriver ${DRIVER_NAME}`,
      needs,
      run: () => csiDriver(o.api),
    },
    {
      id: "cluster.crd",
      group: "cluster",
      title: "The attachment CRD",
      needs,
      run: () => crd(o.api),
    },
    ...DRIVER_RBAC.map((role): Check => ({
      id: `cluster.rbac.${role.role}`,
      group: "cluster",
      title: `RBAC of the ${role.role} (${role.serviceAccount})`,
      needs,
      run: () => rbac(o, role),
    })),
    {
      id: "cluster.node-taint",
      group: "cluster",
      title: "The node's startup taint",
      needs,
      run: () => nodeTaint(o.api, o.nodeName),
    },
    {
      id: "cluster.mountpoint-namespace",
      group: "cluster",
      title: `The namespace ${MOUNTPOINT_NAMESPACE}`,
      needs,
      run: () => mountpointNamespace(o.api),
    },
    {
      id: "cluster.images",
      group: "cluster",
      title: "Images of the driver's pods",
      needs,
      run: () => images(o.api, o.namespace),
    },
  ];
}

const INSTALL = "Install the driver: kubectl apply -k deploy/kubernetes/base";

async function apiCheck(o: ClusterOptions): Promise<Finding> {
  try {
    const ns = await o.api.get(RESOURCES.namespace, o.namespace);
    if (!ns) {
      return failed(`The API answers, but namespace "${o.namespace}" does not exist`, INSTALL);
    }
    return ok(`The API answers; namespace "${o.namespace}" exists`);
  } catch (err) {
    if (err instanceof PermissionDeniedError) {
      // An answer all the same: the checks below say what this account may read.
      return ok(`The API answers (this account may not read namespace "${o.namespace}")`);
    }
    return failed(
      `The API server does not answer: ${errorMessage(err)}`,
      "Check --kubeconfig (KUBECONFIG) or the pod's service account",
    );
  }
}

async function csiDriver(api: KubeApi): Promise<Finding> {
  const d = await api.get<Obj>(RESOURCES.csiDriver, DRIVER_NAME);
  if (!d) return failed(`CSIDriver "${DRIVER_NAME}" does not exist`, INSTALL);
  const spec = d.spec ?? {};
  const wrong: { text: string; verdict: "failed" | "warning" }[] = [];
  for (const [field, want] of Object.entries(EXPECTED_CSIDRIVER)) {
    if (spec[field] !== want.value) {
      wrong.push({
        text: `${field} is ${JSON.stringify(spec[field])}, not ${want.value}`,
        verdict: want.else,
      });
    }
  }
  if (!(spec.volumeLifecycleModes ?? ["Persistent"]).includes("Persistent")) {
    wrong.push({ text: "volumeLifecycleModes lacks Persistent", verdict: "failed" });
  }
  if (wrong.length === 0) return ok(`CSIDriver "${DRIVER_NAME}" has the fields the driver needs`);
  const action = "Its spec is immutable: delete it and apply deploy/kubernetes/base/csidriver.yaml";
  const reason = `CSIDriver "${DRIVER_NAME}": ${wrong.map((w) => w.text).join("; ")}`;
  return wrong.some((w) => w.verdict === "failed")
    ? failed(reason, action)
    : warning(reason, action);
}

async function crd(api: KubeApi): Promise<Finding> {
  const name = `${ATTACHMENT.plural}.${ATTACHMENT.group}`;
  const c = await api.get<Obj>(RESOURCES.crd, name);
  if (!c) return failed(`CRD "${name}" does not exist`, INSTALL);
  const versions: { name: string; served?: boolean }[] = c.spec?.versions ?? [];
  if (!versions.some((v) => v.name === ATTACHMENT.version && v.served)) {
    return failed(
      `CRD "${name}" does not serve ${ATTACHMENT.version}`,
      "Apply deploy/kubernetes/base/crd.yaml",
    );
  }
  const established = (c.status?.conditions ?? []).find((x: { type: string }) =>
    x.type === "Established"
  );
  if (established?.status !== "True") {
    return failed(
      `CRD "${name}" is not Established${established?.message ? `: ${established.message}` : ""}`,
      "Check the API server's logs; kubectl describe crd " + name,
    );
  }
  return ok(`CRD "${name}" is Established and serves ${ATTACHMENT.version}`);
}

async function rbac(o: ClusterOptions, role: RoleRbac): Promise<Finding> {
  const user = `system:serviceaccount:${o.namespace}:${role.serviceAccount}`;
  const api = o.as(user);
  const asks = role.permissions.flatMap((p) => {
    const namespace = scopeNamespace(p, o.namespace);
    return p.verbs.map((verb) => ({
      verb,
      resource: p.resource,
      group: p.group,
      ...(namespace ? { namespace } : {}),
    }));
  });
  let answers: boolean[];
  try {
    answers = await Promise.all(asks.map(async (a) => {
      const review = await api.create<Obj>(RESOURCES.selfSubjectAccessReview, {
        apiVersion: RESOURCES.selfSubjectAccessReview.apiVersion,
        kind: RESOURCES.selfSubjectAccessReview.kind,
        metadata: {},
        spec: { resourceAttributes: a },
      } as Obj);
      return review.status?.allowed === true;
    }));
  } catch (err) {
    if (err instanceof PermissionDeniedError) {
      return warning(
        `Cannot ask as ${user}: impersonation refused`,
        "Run the doctor with a kubeconfig that may impersonate service accounts (cluster-admin)",
      );
    }
    throw err;
  }
  const missing = asks.filter((_, i) => !answers[i]).map((a) =>
    `${a.verb} ${a.group ? `${a.resource}.${a.group}` : a.resource}${
      a.namespace ? ` in ${a.namespace}` : ""
    }`
  );
  if (missing.length === 0) {
    return ok(`${role.serviceAccount} has all ${asks.length} permissions it needs`);
  }
  const shown = missing.slice(0, 4).join(", ") +
    (missing.length > 4 ? `, and ${missing.length - 4} more` : "");
  return failed(
    `${role.serviceAccount} may not: ${shown}`,
    "Apply deploy/kubernetes/base/rbac.yaml and rbac_reconciler.yaml (roles and bindings)",
    { missing },
  );
}

async function nodeTaint(api: KubeApi, nodeName: string | undefined): Promise<Finding> {
  if (!nodeName) {
    return warning(
      "No node name: the node's taint was not checked",
      "Give --node-name (or set NODE_NAME)",
    );
  }
  const node = await api.get<Obj>(RESOURCES.node, nodeName);
  if (!node) return failed(`Node "${nodeName}" does not exist`, "Check --node-name (NODE_NAME)");
  const taint = (node.spec?.taints ?? []).find((t: { key: string }) =>
    t.key === AGENT_NOT_READY_TAINT
  );
  if (taint) {
    return warning(
      `Node "${nodeName}" has ${AGENT_NOT_READY_TAINT}:${taint.effect}: its node plugin does not serve yet`,
      "Check the s3csi node pod on this node (kubectl -n s3csi get pods -o wide; its logs)",
    );
  }
  return ok(`Node "${nodeName}" has no ${AGENT_NOT_READY_TAINT} taint`);
}

async function mountpointNamespace(api: KubeApi): Promise<Finding> {
  const ns = await api.get<Obj>(RESOURCES.namespace, MOUNTPOINT_NAMESPACE);
  if (!ns) return failed(`Namespace "${MOUNTPOINT_NAMESPACE}" does not exist`, INSTALL);
  const level = ns.metadata?.labels?.["pod-security.kubernetes.io/enforce"];
  if (level !== "restricted") {
    return warning(
      `Namespace "${MOUNTPOINT_NAMESPACE}" enforces Pod Security "${
        level ?? "(none)"
      }", not "restricted"`,
      `kubectl label namespace ${MOUNTPOINT_NAMESPACE} pod-security.kubernetes.io/enforce=restricted --overwrite`,
    );
  }
  return ok(`Namespace "${MOUNTPOINT_NAMESPACE}" exists and enforces Pod Security "restricted"`);
}

async function images(api: KubeApi, namespace: string): Promise<Finding> {
  const pods =
    (await api.list<Obj>(RESOURCES.pod, { namespace, labelSelector: DRIVER_LABELS })).items;
  if (pods.length === 0) {
    return warning(`No driver pods in namespace "${namespace}"`, `${INSTALL}; or give --namespace`);
  }
  const byImage = new Map<string, number>();
  for (const p of pods) {
    for (const c of p.spec?.containers ?? []) {
      if (DRIVER_CONTAINERS.has(c.name)) byImage.set(c.image, (byImage.get(c.image) ?? 0) + 1);
    }
  }
  const notRunning = pods.filter((p) => p.status?.phase !== "Running").map((p) =>
    p.metadata?.name ?? ""
  );
  const list = [...byImage].map(([image, n]) => `${image} (${n})`).join(", ");
  const detail = { images: Object.fromEntries(byImage), notRunning };
  if (byImage.size > 1) {
    return warning(
      `Driver pods run different images: ${list}`,
      "Finish the rollout: kubectl -n " + namespace + " rollout status daemonset/deployment",
      detail,
    );
  }
  if (notRunning.length > 0) {
    return warning(
      `${notRunning.length} of ${pods.length} driver pods not running (${
        notRunning.slice(0, 3).join(", ")
      }); image ${list}`,
      `kubectl -n ${namespace} describe pod ${notRunning[0]}`,
      detail,
    );
  }
  return ok(`${pods.length} driver pods run ${list}`, detail);
}
