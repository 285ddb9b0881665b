/**
 * The end-to-end tier: the driver deployed from `deploy/kubernetes/base` on
 * the real single-node test cluster (`scripts/cluster`), against a MinIO
 * that the pods reach on the host's pod-network address. It follows what a
 * user does: a StorageClass and a claim provision a bucket; workloads mount
 * it through the `pod` mounter (the reconciler's Mountpoint Pods and
 * attachments); they share a Mountpoint Pod when their sharing key matches
 * and get their own when it does not; deleting them unmounts and cleans up;
 * deleting the claim removes an empty bucket and keeps a non-empty one; a
 * static PV serves an existing bucket, read-only when asked.
 *
 * Everything is torn down whatever happens: the cluster (which also unmounts
 * what pods left), MinIO, the overlay; no mount may be left under the
 * kubelet's directory.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readMountInfo } from "../../internal/fuse/mod.ts";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { isS3Error } from "../../internal/s3/object_client.ts";
import { type Cluster, clusterDown, clusterUp } from "../cluster/cluster.ts";
import { minioClientConfig, type MinioServer, startMinio } from "../support/minio.ts";
import { deployDriver, waitFor, writeOverlay } from "./deploy.ts";

const isRoot = Deno.uid() === 0;
if (!isRoot) console.warn("tests/e2e: skipped: running a kubelet and containerd needs root");

const DRIVER = "s3.csi.scality.com";
const MOUNT_NS = "mount-s3";

/** Mount points at or below any of `dirs`. */
async function mountsUnder(dirs: string[]): Promise<string[]> {
  return (await readMountInfo()).map((m) => m.mountPoint)
    .filter((p) => dirs.some((d) => p === d || p.startsWith(d + "/")));
}

/**
 * A workload: the s3csi image's Deno runs `script` with the volume at /data,
 * prints what it has to say, and stays running (so its mount stays).
 */
function workload(
  c: Cluster,
  name: string,
  claim: string,
  script: string,
  opts: { fsGroup?: number; readOnly?: boolean } = {},
) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      ...(opts.fsGroup ? { securityContext: { fsGroup: opts.fsGroup } } : {}),
      containers: [{
        name: "main",
        image: c.env.S3CSI_IMAGE,
        imagePullPolicy: "Never",
        command: [
          "/usr/local/bin/deno",
          "eval",
          `${script}\nconsole.log("done");\nsetInterval(() => {}, 1 << 30);`,
        ],
        volumeMounts: [{ name: "data", mountPath: "/data" }],
      }],
      volumes: [{
        name: "data",
        persistentVolumeClaim: { claimName: claim, ...(opts.readOnly ? { readOnly: true } : {}) },
      }],
    },
  };
}

interface Attachment {
  metadata: { name: string };
  spec: {
    persistentVolumeName: string;
    mountpointS3PodAttachments: Record<string, { workloadPodUID: string }[]>;
  };
}

Deno.test({
  name:
    "e2e: the driver deployed from deploy/ provisions, mounts through Mountpoint Pods and cleans up",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const started = Date.now();
    let cluster: Cluster | undefined;
    let minio: MinioServer | undefined;
    const overlay = await Deno.makeTempDir({ prefix: "s3csi-e2e-" });
    try {
      cluster = await clusterUp();
      const c = cluster;
      minio = await startMinio({ host: c.env.S3CSI_CLUSTER_HOST_IP, quiet: true });
      const s3 = new AwsObjectClient(minioClientConfig(minio));
      await writeOverlay(overlay, c, minio);
      await deployDriver(c, overlay);
      console.log(`driver deployed after ${((Date.now() - started) / 1000).toFixed(1)}s`);

      const json = async (args: string[]) => JSON.parse(await c.kubectl([...args, "-o", "json"]));
      const uid = async (pod: string) => (await json(["get", "pod", pod])).metadata.uid as string;
      const attachments = async (): Promise<Attachment[]> => (await json(["get", "s3pa"])).items;
      const mountpointPods = async (): Promise<string[]> =>
        (await json(["-n", MOUNT_NS, "get", "pods"])).items.map(
          (p: { metadata: { name: string } }) => p.metadata.name,
        );
      const describe = (pod: string) => async () =>
        await c.kubectl(["describe", "pod", pod]) +
        await c.kubectl([
          "-n",
          "s3csi",
          "logs",
          "deployment/s3csi-controller",
          "-c",
          "reconciler",
          "--tail=30",
        ]) +
        await c.kubectl(["-n", "s3csi", "logs", "daemonset/s3csi-node", "--tail=30"]);
      const running = async (pod: string) => {
        await waitFor(`pod ${pod} Running with its script done`, async () => {
          const p = await json(["get", "pod", pod]);
          if (p.status?.phase === "Failed") {
            throw new Error(`pod ${pod} failed: ${await describe(pod)()}`);
          }
          if (p.status?.phase !== "Running") return false;
          const log = await c.kubectl(["logs", pod]);
          return log.includes("done\n") ? log : false;
        }, describe(pod));
        return await c.kubectl(["logs", pod]);
      };
      const apply = (obj: unknown) => c.kubectl(["apply", "-f", "-"], JSON.stringify(obj));

      let bucket = "";
      let pv = "";
      const content = `hello from e2e ${crypto.randomUUID()}\n`;

      await t.step("a StorageClass and a claim make a bucket, and the claim is Bound", async () => {
        await apply({
          apiVersion: "storage.k8s.io/v1",
          kind: "StorageClass",
          metadata: { name: "e2e-dedicated" },
          provisioner: DRIVER,
          reclaimPolicy: "Delete",
          volumeBindingMode: "Immediate",
          parameters: { bucketNaming: "dedicated" },
          mountOptions: ["allow-delete", "allow-overwrite"],
        });
        for (const name of ["claim-a", "claim-empty"]) {
          await apply({
            apiVersion: "v1",
            kind: "PersistentVolumeClaim",
            metadata: { name, namespace: "default" },
            spec: {
              accessModes: ["ReadWriteMany"],
              storageClassName: "e2e-dedicated",
              resources: { requests: { storage: "1Gi" } },
            },
          });
        }
        const claim = await waitFor(
          "claim-a Bound",
          async () => {
            const p = await json(["get", "pvc", "claim-a"]);
            return p.status?.phase === "Bound" ? p : false;
          },
          () => c.kubectl(["describe", "pvc", "claim-a"]),
        );
        pv = claim.spec.volumeName;
        const volume = await json(["get", "pv", pv]);
        bucket = volume.spec.csi.volumeHandle;
        assert.match(bucket, /^csi-s3-/);
        await s3.headBucket(bucket);
      });

      await t.step(
        "a workload runs; its file lands in the bucket through a Mountpoint Pod",
        async () => {
          await apply(
            workload(
              c,
              "writer",
              "claim-a",
              `Deno.writeTextFileSync("/data/hello.txt", ${JSON.stringify(content)});`,
            ),
          );
          await running("writer");
          const got = await s3.getObject(bucket, "hello.txt");
          assert.equal(new TextDecoder().decode(got.body), content);
          const pods = await mountpointPods();
          assert.equal(pods.length, 1, `Mountpoint Pods: ${pods}`);
          const atts = await attachments();
          assert.equal(atts.length, 1);
          assert.equal(atts[0].spec.persistentVolumeName, pv);
          assert.deepEqual(
            atts[0].spec.mountpointS3PodAttachments[pods[0]].map((e) => e.workloadPodUID),
            [await uid("writer")],
          );
        },
      );

      await t.step(
        "a second workload shares the Mountpoint Pod; another fsGroup gets its own",
        async () => {
          const read = `console.log("read " + Deno.readTextFileSync("/data/hello.txt").trim());`;
          await apply(workload(c, "reader", "claim-a", read));
          assert.match(await running("reader"), new RegExp(`read ${content.trim()}`));
          const pods = await mountpointPods();
          assert.equal(pods.length, 1, `Mountpoint Pods: ${pods}`);
          const atts = await attachments();
          assert.equal(atts.length, 1);
          assert.deepEqual(
            atts[0].spec.mountpointS3PodAttachments[pods[0]].map((e) => e.workloadPodUID).sort(),
            [await uid("writer"), await uid("reader")].sort(),
          );

          await apply(workload(c, "grouped", "claim-a", read, { fsGroup: 2000 }));
          assert.match(await running("grouped"), new RegExp(`read ${content.trim()}`));
          const after = await mountpointPods();
          assert.equal(after.length, 2, `Mountpoint Pods: ${after}`);
          assert.equal((await attachments()).length, 2);
        },
      );

      await t.step(
        "deleting the workloads unmounts and deletes Mountpoint Pods and attachments",
        async () => {
          await c.kubectl([
            "delete",
            "pod",
            "writer",
            "reader",
            "grouped",
            "--wait=true",
            "--timeout=120s",
          ]);
          await waitFor(
            "no Mountpoint Pod and no attachment",
            async () => (await mountpointPods()).length === 0 && (await attachments()).length === 0,
          );
          // Neither the workloads' targets nor the node's sources are left mounted.
          const kubelet = `${c.env.S3CSI_KUBELET_DIR}/`;
          const left = (await readMountInfo())
            .filter((m) => m.fstype === "fuse.s3csi" && m.mountPoint.startsWith(kubelet));
          assert.deepEqual(left.map((m) => m.mountPoint), []);
        },
      );

      await t.step(
        "deleting claims removes an empty bucket and keeps a non-empty one",
        async () => {
          const emptyPv = (await json(["get", "pvc", "claim-empty"])).spec.volumeName;
          const emptyBucket = (await json(["get", "pv", emptyPv])).spec.csi.volumeHandle;
          await s3.headBucket(emptyBucket);
          await c.kubectl([
            "delete",
            "pvc",
            "claim-a",
            "claim-empty",
            "--wait=true",
            "--timeout=120s",
          ]);
          for (const name of [pv, emptyPv]) {
            await waitFor(
              `PV ${name} deleted`,
              async () =>
                !(await c.kubectl(["get", "pv", "-o", "name"])).includes(
                  `persistentvolume/${name}\n`,
                ),
            );
          }
          await assert.rejects(s3.headBucket(emptyBucket), (e) => isS3Error(e));
          const kept = await s3.getObject(bucket, "hello.txt");
          assert.equal(new TextDecoder().decode(kept.body), content);
        },
      );

      await t.step(
        "a static PV serves an existing bucket; a read-only claim gives EROFS",
        async () => {
          await s3.createBucket("e2e-static");
          await s3.putObject("e2e-static", "seed.txt", new TextEncoder().encode("seeded\n"));
          for (const [name, mode] of [["static", "ReadWriteMany"], ["static-ro", "ReadOnlyMany"]]) {
            await apply({
              apiVersion: "v1",
              kind: "PersistentVolume",
              metadata: { name: `e2e-${name}` },
              spec: {
                capacity: { storage: "1Gi" },
                accessModes: [mode],
                persistentVolumeReclaimPolicy: "Retain",
                storageClassName: "",
                mountOptions: ["allow-delete"],
                claimRef: { namespace: "default", name },
                csi: {
                  driver: DRIVER,
                  volumeHandle: `e2e-${name}`,
                  volumeAttributes: { bucketName: "e2e-static" },
                },
              },
            });
            await apply({
              apiVersion: "v1",
              kind: "PersistentVolumeClaim",
              metadata: { name, namespace: "default" },
              spec: {
                accessModes: [mode],
                storageClassName: "",
                volumeName: `e2e-${name}`,
                resources: { requests: { storage: "1Gi" } },
              },
            });
          }
          // A pod made before its claim binds may wait minutes for the scheduler to try again.
          for (const name of ["static", "static-ro"]) {
            await waitFor(
              `claim ${name} Bound`,
              async () => (await json(["get", "pvc", name])).status?.phase === "Bound",
            );
          }
          const script = `
console.log("read " + Deno.readTextFileSync("/data/seed.txt").trim());
try { Deno.writeTextFileSync("/data/new.txt", "x"); console.log("wrote"); }
catch (e) { console.log("write " + e.message); }`;
          await apply(workload(c, "static-rw", "static", script));
          const rw = await running("static-rw");
          assert.match(rw, /read seeded/);
          assert.match(rw, /^wrote$/m);
          assert.ok(await s3.headObject("e2e-static", "new.txt"));

          await apply(workload(c, "static-ro", "static-ro", script, { readOnly: true }));
          const ro = await running("static-ro");
          assert.match(ro, /read seeded/);
          assert.match(ro, /write Read-only file system \(os error 30\)/);
        },
      );
    } finally {
      const stopping = Date.now();
      try {
        await clusterDown();
      } finally {
        await minio?.stop();
        await Deno.remove(overlay, { recursive: true }).catch(() => {});
      }
      console.log(`cluster down in ${((Date.now() - stopping) / 1000).toFixed(1)}s`);
      console.log(`e2e tier took ${((Date.now() - started) / 1000).toFixed(1)}s`);
    }
    const env = cluster?.env;
    if (env) {
      assert.deepEqual(await mountsUnder([env.S3CSI_KUBELET_DIR, env.S3CSI_CLUSTER_DIR]), []);
    }
  },
});
