/**
 * The second way to deploy, after the Helm chart's scenarios: the
 * manifests of `deploy/kubernetes/base` through a throwaway overlay
 * (`deploy.ts`) with `kubectl apply -k`; a claim and a workload are served
 * through them; `kubectl delete -k` leaves no s3csi object, no Mountpoint
 * Pod and no attachment.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { MinioServer } from "../support/minio.ts";
import { deployDriver, waitFor, writeOverlay } from "./deploy.ts";
import {
  claim,
  DRIVER_NS,
  type E2e,
  MOUNT_NS,
  type Step,
  storageClass,
  workload,
} from "./harness.ts";

export async function kustomizeManifests(
  e: E2e,
  step: Step,
  overlay: string,
  minio: MinioServer,
): Promise<void> {
  let bucket = "";
  await step(
    "the kustomize manifests deploy the same driver, and it serves a workload",
    async () => {
      await writeOverlay(overlay, e.c, minio);
      await deployDriver(e.c, overlay);
      await e.apply(storageClass("e2e-kustomize", { bucketNaming: "dedicated" }));
      await e.apply(claim("claim-k", "e2e-kustomize"));
      bucket = (await e.bound("claim-k")).bucket;
      const content = `written through the kustomize manifests ${crypto.randomUUID()}\n`;
      await e.apply(workload(
        e.c,
        "kustomize-writer",
        "claim-k",
        `Deno.writeTextFileSync("/data/k.txt", ${JSON.stringify(content)});`,
      ));
      await e.running("kustomize-writer");
      const got = await e.s3.getObject(bucket, "k.txt");
      assert.equal(new TextDecoder().decode(got.body), content);
      assert.deepEqual(await e.workloadsByMountpointPod(), {
        [(await e.mountpointPods())[0]]: [await e.uid("kustomize-writer")],
      });
    },
  );

  await step("kubectl delete -k leaves no s3csi object, Mountpoint Pod or attachment", async () => {
    await e.deleteAndWait("pod", ["kustomize-writer"], "default");
    await e.noMountpointPods();
    const { pv } = await e.bound("claim-k");
    await e.deleteAndWait("pvc", ["claim-k"], "default");
    await e.pvDeleted(pv);
    await e.kubectl(["delete", "storageclass", "e2e-kustomize"]);
    await e.kubectl(["delete", "-k", overlay, "--wait=true", "--timeout=180s"]);
    await waitFor("the driver's namespaces gone", async () => {
      const ns = await e.kubectl(["get", "namespaces", "-o", "name"]);
      return !ns.includes(`namespace/${DRIVER_NS}\n`) && !ns.includes(`namespace/${MOUNT_NS}\n`);
    });
    const left = await e.kubectl([
      "get",
      "csidriver,clusterrole,clusterrolebinding,priorityclass,customresourcedefinition",
      "-l",
      "app.kubernetes.io/name=s3csi",
      "-o",
      "name",
    ]);
    assert.equal(left.trim(), "", `left behind: ${left}`);
    await e.s3.headBucket(bucket);
  });
}
