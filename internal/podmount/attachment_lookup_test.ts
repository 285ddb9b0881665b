import assert from "node:assert/strict";
import { attachmentSelector, livePodUid, mountpointPodFor } from "./attachment_lookup.ts";
import { volumeLabel } from "./contract.ts";

const query = { nodeName: "node-1", volumeId: "vol-1", workloadPodUid: "w-2" };

function attachment(spec: Record<string, unknown>) {
  return {
    apiVersion: "s3.csi.scality.com/v1",
    kind: "MountpointS3PodAttachment",
    metadata: { name: "s3pa-abc" },
    spec: { nodeName: "node-1", volumeID: "vol-1", ...spec },
  };
}

Deno.test("mountpointPodFor() names the Mountpoint Pod whose entries list the workload", () => {
  const items = [
    attachment({
      mountpointS3PodAttachments: {
        "mp-a": [{ workloadPodUID: "w-1", attachmentTime: "2026-12-02T06:00:00Z" }],
        "mp-b": [
          { workloadPodUID: "w-3", attachmentTime: "2026-12-02T06:00:00Z" },
          { workloadPodUID: "w-2", attachmentTime: "2026-12-02T06:01:00Z" },
        ],
      },
    }),
  ];
  assert.equal(mountpointPodFor(items, query), "mp-b");
  assert.equal(mountpointPodFor(items, { ...query, workloadPodUid: "w-9" }), undefined);
});

Deno.test("mountpointPodFor() ignores other nodes, other volumes and malformed items", () => {
  const entries = { "mp-x": [{ workloadPodUID: "w-2", attachmentTime: "t" }] };
  const items = [
    null,
    "text",
    { spec: null },
    attachment({ nodeName: "node-2", mountpointS3PodAttachments: entries }),
    attachment({ volumeID: "vol-2", mountpointS3PodAttachments: entries }),
    attachment({ mountpointS3PodAttachments: { "mp-y": "w-2" } }),
    attachment({ mountpointS3PodAttachments: { "mp-z": [null, "w-2"] } }),
  ];
  assert.equal(mountpointPodFor(items, query), undefined);
  assert.equal(
    mountpointPodFor([...items, attachment({ mountpointS3PodAttachments: entries })], query),
    "mp-x",
  );
});

Deno.test("livePodUid() gives the UID of a pod that exists and is not being deleted", () => {
  assert.equal(livePodUid({ metadata: { name: "mp", uid: "u-1" } }), "u-1");
  assert.equal(
    livePodUid({ metadata: { uid: "u-1", deletionTimestamp: "2026-12-02T06:00:00Z" } }),
    undefined,
  );
  assert.equal(livePodUid({ metadata: { uid: "" } }), undefined);
  assert.equal(livePodUid({}), undefined);
});

Deno.test("attachmentSelector() selects by the node and the volume ID's label value", async () => {
  assert.equal(
    await attachmentSelector("node-1", "vol-1"),
    `s3.csi.scality.com/node=node-1,s3.csi.scality.com/volume=${await volumeLabel("vol-1")}`,
  );
});
