/**
 * End-to-end scenarios of provisioning with per-namespace credentials, as
 * the seeds recommend them:
 * - `Immediate`, secret names templated with `${pvc.namespace}` and
 *   `${pvc.name}`: each claim's bucket is made with the secret of its own
 *   namespace (valid keys bind, the same name with wrong keys in another
 *   namespace is refused by S3), a missing secret shows a
 *   `ProvisioningFailed` event that names it, and a workload mounts with the
 *   node-publish secret of the same template;
 * - `WaitForFirstConsumer` with `${pv.name}`: the claim stays Pending
 *   without a bucket until a workload uses it, then binds with the secret
 *   named after its PV; its class's `reclaimPolicy: Retain` keeps the
 *   bucket and its objects after the claim is deleted.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isS3Error } from "../../internal/s3/object_client.ts";
import { waitFor } from "./deploy.ts";
import { claim, type E2e, s3Secret, type Step, storageClass, workload } from "./harness.ts";

const SECRET_KEYS = {
  provisioner: "csi.storage.k8s.io/provisioner-secret",
  nodePublish: "csi.storage.k8s.io/node-publish-secret",
};

/** StorageClass parameters naming both secrets by `nameTemplate` in the claim's namespace. */
function secretParams(nameTemplate: string): Record<string, string> {
  const out: Record<string, string> = { bucketNaming: "dedicated" };
  for (const prefix of Object.values(SECRET_KEYS)) {
    out[`${prefix}-name`] = nameTemplate;
    out[`${prefix}-namespace`] = "${pvc.namespace}";
  }
  return out;
}

const namespace = (name: string) => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name },
});

async function bucketExists(e: E2e, bucket: string): Promise<boolean> {
  return await e.s3.headBucket(bucket).then(() => true, (err) => {
    if (isS3Error(err)) return false;
    throw err;
  });
}

export async function templatedSecrets(e: E2e, step: Step): Promise<void> {
  const { accessKeyId, secretAccessKey } = e.minio;
  await step(
    "Immediate: ${pvc.namespace}/${pvc.name} secrets resolve per namespace; a missing one is named",
    async () => {
      await e.apply(storageClass("e2e-per-claim", secretParams("${pvc.name}-s3")));
      for (const ns of ["team-a", "team-b", "team-c"]) await e.apply(namespace(ns));
      await e.apply(s3Secret("data-s3", "team-a", accessKeyId, secretAccessKey));
      await e.apply(s3Secret("data-s3", "team-b", accessKeyId, `wrong-${secretAccessKey}`));
      for (const ns of ["team-a", "team-b", "team-c"]) {
        await e.apply(claim("data", "e2e-per-claim", ns));
      }

      const a = await e.bound("data", "team-a");
      assert.ok(await bucketExists(e, a.bucket));
      const volume = await e.json(["get", "pv", a.pv]);
      assert.deepEqual(volume.spec.csi.nodePublishSecretRef, {
        name: "data-s3",
        namespace: "team-a",
      });

      // team-b's secret has the same name and other keys: S3 refuses them.
      const refused = await e.claimEvent("data", "team-b", "ProvisioningFailed", /./);
      assert.match(refused, /SignatureDoesNotMatch|signature|credentials|denied/i);
      // team-c has no secret: the event names the one it looked for.
      const missing = await e.claimEvent("data", "team-c", "ProvisioningFailed", /data-s3/);
      assert.match(missing, /team-c/);
      assert.match(missing, /not found/);
      for (const ns of ["team-b", "team-c"]) {
        assert.equal((await e.json(["-n", ns, "get", "pvc", "data"])).status.phase, "Pending");
      }

      // The workload mounts with the node-publish secret of the same template.
      const text = `team-a ${crypto.randomUUID()}`;
      await e.apply(
        workload(
          e.c,
          "team-writer",
          "data",
          `Deno.writeTextFileSync("/data/team.txt", ${JSON.stringify(text)});`,
          { namespace: "team-a" },
        ),
      );
      await e.running("team-writer", "team-a");
      const got = await e.s3.getObject(a.bucket, "team.txt");
      assert.equal(new TextDecoder().decode(got.body), text);
      const att = (await e.attachments()).find((x) => x.spec.persistentVolumeName === a.pv);
      assert.equal(
        (att?.spec as { authenticationSource?: string } | undefined)?.authenticationSource,
        "secret",
      );
    },
  );
}

export async function waitForFirstConsumer(e: E2e, step: Step): Promise<void> {
  const { accessKeyId, secretAccessKey } = e.minio;
  let bucket = "";
  let pv = "";
  await step(
    "WaitForFirstConsumer: ${pv.name} secrets; the claim binds when a workload comes",
    async () => {
      await e.apply(
        storageClass("e2e-late", secretParams("${pv.name}-secret"), {
          reclaimPolicy: "Retain",
          volumeBindingMode: "WaitForFirstConsumer",
        }),
      );
      await e.apply(claim("late", "e2e-late", "team-a"));
      // The PV the provisioner will make is named after the claim's UID.
      const uid = (await e.json(["-n", "team-a", "get", "pvc", "late"])).metadata.uid;
      pv = `pvc-${uid}`;
      await e.apply(s3Secret(`${pv}-secret`, "team-a", accessKeyId, secretAccessKey));
      await e.claimEvent("late", "team-a", "WaitForFirstConsumer", /first consumer/);
      assert.equal((await e.json(["-n", "team-a", "get", "pvc", "late"])).status.phase, "Pending");

      const text = `late ${crypto.randomUUID()}`;
      await e.apply(
        workload(
          e.c,
          "late-writer",
          "late",
          `Deno.writeTextFileSync("/data/late.txt", ${JSON.stringify(text)});`,
          { namespace: "team-a" },
        ),
      );
      const bound = await e.bound("late", "team-a");
      assert.equal(bound.pv, pv);
      bucket = bound.bucket;
      await e.running("late-writer", "team-a");
      const got = await e.s3.getObject(bucket, "late.txt");
      assert.equal(new TextDecoder().decode(got.body), text);
    },
  );

  await step("reclaimPolicy Retain keeps the bucket when the claim goes", async () => {
    await e.deleteAndWait("pod", ["late-writer", "team-writer"], "team-a");
    await e.deleteAndWait("pvc", ["late"], "team-a");
    await waitFor(
      `PV ${pv} Released`,
      async () => (await e.json(["get", "pv", pv])).status?.phase === "Released",
    );
    const kept = await e.s3.listObjects(bucket);
    assert.deepEqual(kept.objects.map((o) => o.key), ["late.txt"]);
    // The administrator's part under Retain: the PV and the bucket are theirs to remove.
    await e.deleteAndWait("pv", [pv]);
    assert.ok(await bucketExists(e, bucket));
  });
}
