import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import type { Attachment } from "../kube/mod.ts";
import { LABEL_VERSION } from "../podmount/contract.ts";
import { type Action, type KeyState, plan, type PlanContext, type Workload } from "./plan.ts";
import { keyText, type SharingKey } from "./sharing_key.ts";
import { pv } from "./testing.ts";

const KEY: SharingKey = {
  nodeName: "n1",
  persistentVolumeName: "pv-a",
  volumeID: "vol-a",
  mountOptions: "",
  workloadFSGroup: "",
  authenticationSource: "driver",
};
const OTHER: SharingKey = { ...KEY, workloadFSGroup: "2000" };

function ctx(): PlanContext {
  let n = 0;
  return {
    attachmentName: (k) => `att-${k.workloadFSGroup || "none"}`,
    newPodName: (k) => `mp-${k.workloadFSGroup || "none"}-${n++}`,
    podFor: (name) => ({ metadata: { name, labels: { [LABEL_VERSION]: "v1" } } }),
  };
}

function w(uid: string, key = KEY): Workload {
  return { uid, key, pv: pv("pv-a", "vol-a") };
}

function state(partial: Partial<KeyState>): KeyState {
  return {
    nodeName: "n1",
    nodeExists: true,
    nodeLabel: "n1",
    volumeLabel: "v",
    workloads: [],
    attachments: [],
    mountpointPods: [],
    version: "v1",
    now: new Date(Date.UTC(2026, 0, 1)),
    ...partial,
  };
}

function attachment(
  name: string,
  key: SharingKey,
  pods: Record<string, string[]>,
): Attachment {
  return {
    apiVersion: "s3.csi.scality.com/v1",
    kind: "MountpointS3PodAttachment",
    metadata: { name, uid: `u-${name}`, resourceVersion: "7" },
    spec: {
      ...key,
      mountpointS3PodAttachments: Object.fromEntries(
        Object.entries(pods).map(([p, uids]) => [
          p,
          uids.map((u) => ({ workloadPodUID: u, attachmentTime: "2026-01-01T00:00:00.000Z" })),
        ]),
      ),
    },
  };
}

function mpPod(name: string, version = "v1", extra: Partial<V1Pod> = {}): V1Pod {
  return {
    metadata: { name, uid: `u-${name}`, labels: { [LABEL_VERSION]: version } },
    ...extra,
  };
}

/** Writes as short strings, for readable asserts. */
function brief(actions: Action[]): string[] {
  return actions.map((a) => {
    switch (a.type) {
      case "createAttachment":
      case "updateAttachment": {
        const m = a.attachment.spec.mountpointS3PodAttachments;
        const pods = Object.entries(m).map(([p, ws]) =>
          `${p}=${ws.map((x) => x.workloadPodUID).join("+")}`
        );
        return `${a.type} ${a.attachment.metadata.name} ${pods.join(" ")}`;
      }
      case "createPod":
        return `createPod ${a.pod.metadata!.name}`;
      default:
        return `${a.type} ${a.name}`;
    }
  });
}

Deno.test("plan: two workloads of one key share one attachment and one Mountpoint Pod", () => {
  const actions = plan(state({ workloads: [w("w1"), w("w2")] }), ctx());
  assert.deepEqual(brief(actions), [
    "createAttachment att-none mp-none-0=w1+w2",
    "createPod mp-none-0",
  ]);
  const a = actions[0] as Extract<Action, { type: "createAttachment" }>;
  assert.deepEqual(
    { ...a.attachment.spec, mountpointS3PodAttachments: undefined },
    { ...KEY, mountpointS3PodAttachments: undefined },
  );
  assert.deepEqual(a.attachment.metadata.labels, {
    "s3.csi.scality.com/node": "n1",
    "s3.csi.scality.com/volume": "v",
  });
  assert.equal(
    a.attachment.spec.mountpointS3PodAttachments["mp-none-0"][0].attachmentTime,
    "2026-01-01T00:00:00.000Z",
  );
});

Deno.test("plan: a workload with another key gets its own attachment and pod", () => {
  assert.notEqual(keyText(KEY), keyText(OTHER));
  const actions = plan(state({ workloads: [w("w1"), w("w2", OTHER)] }), ctx());
  assert.deepEqual(brief(actions).sort(), [
    "createAttachment att-2000 mp-2000-1=w2",
    "createAttachment att-none mp-none-0=w1",
    "createPod mp-2000-1",
    "createPod mp-none-0",
  ]);
});

Deno.test("plan: a new workload joins the existing pod of its key made by this version", () => {
  const s = state({
    workloads: [w("w1"), w("w2")],
    attachments: [attachment("att-none", KEY, { "mp-old": ["w1"] })],
    mountpointPods: [mpPod("mp-old")],
  });
  const actions = plan(s, ctx());
  assert.deepEqual(brief(actions), ["updateAttachment att-none mp-old=w1+w2"]);
  const a = actions[0] as Extract<Action, { type: "updateAttachment" }>;
  assert.equal(a.attachment.metadata.resourceVersion, "7", "conditional on the version read");
});

Deno.test("plan: a pod of another driver version keeps its workloads; a newcomer gets a new pod", () => {
  const s = state({
    workloads: [w("w1"), w("w2")],
    attachments: [attachment("att-none", KEY, { "mp-old": ["w1"] })],
    mountpointPods: [mpPod("mp-old", "v0")],
  });
  assert.deepEqual(brief(plan(s, ctx())), [
    "updateAttachment att-none mp-old=w1 mp-none-0=w2",
    "createPod mp-none-0",
  ]);
});

const RUNNING: Partial<V1Pod> = {
  status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] },
};

Deno.test("plan: with mayUpgrade one running pod of another version is deleted, to come back at this version", () => {
  const s = state({
    workloads: [w("w1"), w("w2", OTHER)],
    attachments: [
      attachment("att-none", KEY, { "mp-old": ["w1"] }),
      attachment("att-2000", OTHER, { "mp-old2": ["w2"] }),
    ],
    mountpointPods: [mpPod("mp-old", "v0", RUNNING), mpPod("mp-old2", "v0", RUNNING)],
    mayUpgrade: true,
  });
  const actions = plan(s, ctx());
  assert.deepEqual(brief(actions), ["deletePod mp-old"], "one pod per run");
  assert.equal(actions[0].type === "deletePod" && actions[0].upgrade, true);
  // Once it is gone, the same name is created again, at this version; the next waits its turn.
  const after = state({ ...s, mountpointPods: [mpPod("mp-old2", "v0", RUNNING)] });
  assert.deepEqual(brief(plan({ ...after, mayUpgrade: false }, ctx())), ["createPod mp-old"]);
});

Deno.test("plan: the upgrade leaves alone pods of this version, pods not yet serving, and everything without mayUpgrade", () => {
  const pending: Partial<V1Pod> = { status: { phase: "Pending" } };
  const leaving = mpPod("mp-a", "v0", RUNNING);
  leaving.metadata!.deletionTimestamp = new Date();
  const cases: [V1Pod, boolean][] = [
    [mpPod("mp-a", "v1", RUNNING), true],
    [mpPod("mp-a", "v0", pending), true],
    [leaving, true],
    [mpPod("mp-a", "v0", RUNNING), false],
  ];
  for (const [pod, mayUpgrade] of cases) {
    const s = state({
      workloads: [w("w1")],
      attachments: [attachment("att-none", KEY, { "mp-a": ["w1"] })],
      mountpointPods: [pod],
      mayUpgrade,
    });
    assert.deepEqual(brief(plan(s, ctx())), [], JSON.stringify({ pod, mayUpgrade }));
  }
});

Deno.test("plan: a finished or deleted workload is removed; the emptied pod and attachment go", () => {
  const att = attachment("att-none", KEY, { "mp-1": ["w1", "w2"] });
  const pods = [mpPod("mp-1")];
  // w2 finished (the runtime leaves it out of the workloads): only w1 stays.
  assert.deepEqual(
    brief(plan(state({ workloads: [w("w1")], attachments: [att], mountpointPods: pods }), ctx())),
    ["updateAttachment att-none mp-1=w1"],
  );
  // The pod serves the mount until the node's unpublish ends its session: it is kept till then.
  assert.deepEqual(
    brief(plan(state({ workloads: [], attachments: [att], mountpointPods: pods }), ctx())),
    ["deleteAttachment att-none"],
  );
  const ended = [mpPod("mp-1", "v1", { status: { phase: "Succeeded" } })];
  assert.deepEqual(brief(plan(state({ mountpointPods: ended }), ctx())), ["deletePod mp-1"]);
});

Deno.test("plan: the old version's pod goes with its last workload, the new one stays", () => {
  const att = attachment("att-none", KEY, { "mp-old": ["w1"], "mp-new": ["w2"] });
  const s = state({
    workloads: [w("w2")],
    attachments: [att],
    mountpointPods: [mpPod("mp-old", "v0", { status: { phase: "Succeeded" } }), mpPod("mp-new")],
  });
  assert.deepEqual(brief(plan(s, ctx())), [
    "updateAttachment att-none mp-new=w2",
    "deletePod mp-old",
  ]);
});

Deno.test("plan: converged state asks for nothing", () => {
  const s = state({
    workloads: [w("w1"), w("w2")],
    attachments: [attachment("att-none", KEY, { "mp-1": ["w1", "w2"] })],
    mountpointPods: [mpPod("mp-1")],
  });
  assert.deepEqual(plan(s, ctx()), []);
});

Deno.test("plan: a listed pod that is missing is created again; one that ended is deleted", () => {
  const att = attachment("att-none", KEY, { "mp-1": ["w1"] });
  assert.deepEqual(brief(plan(state({ workloads: [w("w1")], attachments: [att] }), ctx())), [
    "createPod mp-1",
  ]);
  const ended = mpPod("mp-1", "v1", { status: { phase: "Succeeded" } });
  assert.deepEqual(
    brief(
      plan(state({ workloads: [w("w1")], attachments: [att], mountpointPods: [ended] }), ctx()),
    ),
    ["deletePod mp-1"],
  );
  const going = mpPod("mp-1", "v1", { metadata: { name: "mp-1", deletionTimestamp: new Date() } });
  assert.deepEqual(
    plan(state({ workloads: [w("w1")], attachments: [att], mountpointPods: [going] }), ctx()),
    [],
    "wait for a terminating pod to go before creating it again",
  );
});

Deno.test("plan: an unlisted Mountpoint Pod is deleted once it has ended, not while it serves", () => {
  assert.deepEqual(plan(state({ mountpointPods: [mpPod("mp-stray")] }), ctx()), []);
  const failed = mpPod("mp-stray", "v1", { status: { phase: "Failed" } });
  assert.deepEqual(brief(plan(state({ mountpointPods: [failed] }), ctx())), ["deletePod mp-stray"]);
});

Deno.test("plan: when the node is gone its attachments and Mountpoint Pods are deleted", () => {
  const s = state({
    nodeExists: false,
    workloads: [w("w1")],
    attachments: [attachment("att-none", KEY, { "mp-1": ["w1"] })],
    mountpointPods: [mpPod("mp-1")],
  });
  assert.deepEqual(brief(plan(s, ctx())), ["deletePod mp-1", "deleteAttachment att-none"]);
});
