import assert from "node:assert/strict";
import {
  type ClaimLookup,
  isActive,
  normaliseMountOptions,
  workloadVolumes,
} from "./sharing_key.ts";
import { pv, pvc, workload } from "./testing.ts";

function lookup(...objs: ReturnType<typeof pv | typeof pvc>[]): ClaimLookup {
  return {
    claim: (ns, name) =>
      objs.find((o) =>
        o.kind === "PersistentVolumeClaim" && o.metadata?.namespace === ns &&
        o.metadata?.name === name
      ) as ReturnType<typeof pvc> | undefined,
    volume: (name) =>
      objs.find((o) => o.kind === "PersistentVolume" && o.metadata?.name === name) as
        | ReturnType<typeof pv>
        | undefined,
  };
}

Deno.test("mount options: spellings of one option normalise alike", () => {
  assert.equal(
    normaliseMountOptions(["uid=1000", "allow-other"]),
    normaliseMountOptions(["--allow_other", "uid 1000"]),
  );
  assert.notEqual(normaliseMountOptions(["uid=1000"]), normaliseMountOptions(["uid=1001"]));
  assert.equal(normaliseMountOptions([]), "");
  // Options the node refuses still give a stable key.
  assert.equal(normaliseMountOptions(["nope", " bad "]), normaliseMountOptions(["bad", "nope"]));
});

Deno.test("workloadVolumes: a scheduled pod's claims bound to this driver's PVs", () => {
  const l = lookup(
    pv("pv-a", "vol-a", { mountOptions: ["uid=1000"], attrs: { authenticationSource: "secret" } }),
    pv("pv-other", "x", { driver: "ebs.csi.aws.com" }),
    pvc("apps", "claim-a", "pv-a"),
    pvc("apps", "claim-o", "pv-other"),
  );
  const p = workload("w1", "claim-a", "n1", { fsGroup: 2000 });
  p.spec!.volumes!.push({ name: "o", persistentVolumeClaim: { claimName: "claim-o" } });
  assert.deepEqual(workloadVolumes(p, l).map((v) => v.key), [{
    nodeName: "n1",
    persistentVolumeName: "pv-a",
    volumeID: "vol-a",
    mountOptions: normaliseMountOptions(["uid=1000"]),
    workloadFSGroup: "2000",
    authenticationSource: "secret",
  }]);
  assert.deepEqual(workloadVolumes(workload("w2", "claim-a", undefined), l), [], "not scheduled");
  assert.deepEqual(workloadVolumes(workload("w3", "missing", "n1"), l), [], "claim unknown");
});

Deno.test("workloadVolumes: a generic ephemeral volume's claim is <pod>-<volume>", () => {
  const l = lookup(pv("pv-e", "vol-e"), pvc("apps", "w1-scratch", "pv-e"));
  const p = workload("w1", "unused", "n1");
  p.spec!.volumes = [{ name: "scratch", ephemeral: {} }];
  assert.deepEqual(workloadVolumes(p, l).map((v) => v.key.volumeID), ["vol-e"]);
});

Deno.test("isActive: Succeeded and Failed pods no longer use their volumes", () => {
  assert.ok(isActive(workload("a", "c", "n")));
  assert.ok(isActive(workload("a", "c", "n", { phase: "Pending" })));
  assert.ok(!isActive(workload("a", "c", "n", { phase: "Succeeded" })));
  assert.ok(!isActive(workload("a", "c", "n", { phase: "Failed" })));
});
