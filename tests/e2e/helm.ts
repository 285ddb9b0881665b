/**
 * The driver installed with its Helm chart (`deploy/helm/s3csi`), as a user
 * installs it, with the values this machine needs (`testValues`: local
 * images never pulled, MinIO's endpoint, host networking and the API
 * server's address, no livenessprobe sidecar). `installChart` runs before
 * the scenarios, which all go through it; `helmChart` then checks the rest:
 * every workload deleted leaves no Mountpoint Pod; the chart's manifests for
 * several value sets pass a server-side dry run; `s3csi doctor` in the node
 * pod finds the driver healthy; `helm upgrade` to a changed value rolls the
 * controller, which still provisions; `helm uninstall` leaves no s3csi
 * object, no Mountpoint Pod and no attachment, and the doctor then names
 * the missing CRD.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { MinioServer } from "../support/minio.ts";
import { CHART, helm, renderText, REQUIRED } from "../helm/chart.ts";
import { apiEnv, driverServing, splitImage, waitFor } from "./deploy.ts";
import {
  claim,
  DRIVER_NS,
  type E2e,
  MOUNT_NS,
  s3Secret,
  type Step,
  storageClass,
  WORKLOAD_LABEL,
} from "./harness.ts";

const RELEASE = "s3csi";
/** Where the value sets are dry-run. */
const DRY_NS = "s3csi-dry-run";
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The value sets whose manifests the API server checks (a dry run each). */
const VALUE_SETS: Record<string, string[]> = {
  defaults: REQUIRED,
  sidecars: [...REQUIRED, "--set", "node.registration.sidecars=true"],
  "process mounter": [...REQUIRED, "--set", "node.mounter=process"],
  "inline CA": [
    ...REQUIRED,
    "--set-string",
    "tls.caCertData=-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
  ],
  "host network": [
    ...REQUIRED,
    "--set",
    "controller.hostNetwork=true,node.hostNetwork=true",
    "--set",
    "kubernetesApi.host=127.0.0.1",
    "--set-string",
    "kubernetesApi.port=6443",
  ],
};

/** What this machine needs: local images, MinIO, host networking, no sidecar to pull. */
function testValues(e: E2e, minio: MinioServer): string[] {
  const image = splitImage(e.c.env.S3CSI_IMAGE);
  const prov = splitImage(e.c.env.CSI_PROVISIONER_IMAGE);
  const [host, port] = apiEnv(e.c).map((v) => v.value);
  const set = {
    "image.repository": image.newName,
    "image.tag": image.newTag,
    "image.pullPolicy": "Never",
    "s3.endpointUrl": minio.endpoint,
    "s3.region": minio.region,
    "controller.hostNetwork": "true",
    "controller.livenessProbe.enabled": "false",
    "controller.provisioner.image.repository": prov.newName,
    "controller.provisioner.image.tag": prov.newTag,
    "controller.provisioner.image.pullPolicy": "Never",
    "node.hostNetwork": "true",
    "kubernetesApi.host": host,
  };
  return [
    ...Object.entries(set).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
    "--set-string",
    `kubernetesApi.port=${port}`,
  ];
}

async function helmOk(e: E2e, args: string[]): Promise<string> {
  const r = await helm(args, { KUBECONFIG: e.c.env.KUBECONFIG });
  if (r.code !== 0) throw new Error(`helm ${args[0]} failed: ${r.err}${r.out}`);
  return r.out;
}

/**
 * Runs a `s3csi doctor --json` command line; asserts nothing failed (exit 0)
 * and gives each check's verdict and reason.
 */
async function doctor(exe: string, args: string[], e: E2e) {
  const run = await new Deno.Command(exe, {
    args,
    env: { KUBECONFIG: e.c.env.KUBECONFIG },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(run.stdout);
  assert.ok(out.trim().startsWith("{"), new TextDecoder().decode(run.stderr));
  const report = JSON.parse(out) as { checks: { id: string; verdict: string; reason: string }[] };
  assert.deepEqual(report.checks.filter((c) => c.verdict === "failed"), [], out);
  assert.equal(run.code, 0);
  const find = (id: string) => report.checks.find((c) => c.id === id);
  return {
    out,
    verdict: (id: string) => find(id)?.verdict,
    reason: (id: string) => find(id)?.reason,
  };
}

/** Cluster-scoped objects the chart makes (the release's label), as "kind/name". */
async function releaseObjects(e: E2e): Promise<string[]> {
  const out = await e.kubectl([
    "get",
    "csidriver,clusterrole,clusterrolebinding,priorityclass,customresourcedefinition,namespace",
    "-l",
    `app.kubernetes.io/instance=${RELEASE}`,
    "-o",
    "name",
  ]);
  return out.split("\n").filter(Boolean);
}

/** Installs the chart in place of nothing: the driver's namespace, its credentials, the release. */
export async function installChart(e: E2e, minio: MinioServer): Promise<void> {
  // The node pods are privileged: their namespace allows it, and holds the credentials.
  await e.apply({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: DRIVER_NS, labels: { "pod-security.kubernetes.io/enforce": "privileged" } },
  });
  await e.apply(
    s3Secret("s3csi-credentials", DRIVER_NS, minio.accessKeyId, minio.secretAccessKey),
  );
  const notes = await helmOk(e, [
    "install",
    RELEASE,
    CHART,
    "--namespace",
    DRIVER_NS,
    ...testValues(e, minio),
  ]);
  assert.match(notes, /Driver credentials: Secret s3csi\/s3csi-credentials\./);
  await driverServing(e.c);
}

export async function helmChart(e: E2e, step: Step, minio: MinioServer): Promise<void> {
  await step(
    "every workload of the earlier scenarios deleted, no Mountpoint Pod is left",
    async () => {
      await e.kubectl([
        "delete",
        "pods",
        "--all-namespaces",
        "-l",
        `${WORKLOAD_LABEL}=true`,
        "--wait=true",
        "--timeout=120s",
      ]);
      await e.noMountpointPods();
    },
  );

  await step(
    "the chart's manifests pass a server-side dry run for several value sets",
    async () => {
      // A namespace of their own: the kustomize deployment's objects in s3csi have other
      // (immutable) selectors. Cluster-scoped objects are checked as updates of the same ones.
      await e.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: DRY_NS } });
      try {
        for (const [name, args] of Object.entries(VALUE_SETS)) {
          const manifest = await renderText(args, DRY_NS);
          await e.kubectl(["apply", "--dry-run=server", "-f", "-"], manifest).catch((err) => {
            throw new Error(`value set "${name}": ${err}`);
          });
        }
      } finally {
        await e.kubectl(["delete", "namespace", DRY_NS, "--wait=true"]);
      }
    },
  );

  await step(
    "s3csi doctor finds the driver healthy, in the node pod and as an administrator",
    async () => {
      // In the node pod, as its least-privilege account: what it may not read is a warning.
      const inPod = await doctor(e.c.env.KUBECTL, [
        "-n",
        DRIVER_NS,
        "exec",
        "ds/s3csi-node",
        "-c",
        "s3csi",
        "--",
        "s3csi",
        "doctor",
        "--json",
      ], e);
      for (const id of ["local.fuse-mount", "local.propagation", "s3.auth", "cluster.node-taint"]) {
        assert.equal(inPod.verdict(id), "ok", `${id} in ${inPod.out}`);
      }
      assert.match(inPod.reason("cluster.crd") ?? "", /^Not allowed to check: .*forbidden/);
      assert.ok(!inPod.out.includes(minio.secretAccessKey), "no secret in the report");
      // On the host as the cluster's administrator: the cluster checks, RBAC through
      // SelfSubjectAccessReview as each of the driver's service accounts.
      const admin = await doctor(Deno.execPath(), [
        "run",
        "-A",
        MAIN,
        "doctor",
        "--json",
        "--skip",
        "local,s3",
        "--node-name",
        e.c.env.S3CSI_CLUSTER_NODE,
      ], e);
      for (
        const id of [
          "cluster.csidriver",
          "cluster.crd",
          "cluster.rbac.node",
          "cluster.rbac.controller",
          "cluster.node-taint",
          "cluster.mountpoint-namespace",
        ]
      ) assert.equal(admin.verdict(id), "ok", `${id} in ${admin.out}`);
    },
  );

  await step("helm upgrade to a changed value rolls the controller with it", async () => {
    await helmOk(e, [
      "upgrade",
      RELEASE,
      CHART,
      "--namespace",
      DRIVER_NS,
      "--reuse-values",
      "--set",
      "logLevel=debug",
    ]);
    await e.kubectl([
      "-n",
      DRIVER_NS,
      "rollout",
      "status",
      "deployment/s3csi-controller",
      "--timeout=180s",
    ]);
    const live = (await e.driverPods("controller")).filter((
      p: { metadata: { deletionTimestamp?: string } },
    ) => !p.metadata.deletionTimestamp);
    assert.ok(live.length > 0);
    for (const p of live) {
      const env = p.spec.containers[0].env as { name: string; value?: string }[];
      assert.equal(env.find((v) => v.name === "S3CSI_LOG_LEVEL")?.value, "debug", p.metadata.name);
    }
    const history = JSON.parse(
      await helmOk(e, ["history", RELEASE, "--namespace", DRIVER_NS, "-o", "json"]),
    );
    assert.deepEqual(history.map((h: { revision: number }) => h.revision), [1, 2]);
    // The upgraded driver still provisions.
    await e.apply(storageClass("e2e-helm", { bucketNaming: "dedicated" }));
    await e.apply(claim("claim-helm-2", "e2e-helm"));
    await e.bound("claim-helm-2");
  });

  await step("helm uninstall leaves no s3csi object, Mountpoint Pod or attachment", async () => {
    const { pv } = await e.bound("claim-helm-2");
    await e.deleteAndWait("pvc", ["claim-helm-2"], "default");
    await e.pvDeleted(pv);
    await e.kubectl(["delete", "storageclass", "e2e-helm"]);
    await helmOk(e, ["uninstall", RELEASE, "--namespace", DRIVER_NS, "--wait"]);
    await waitFor(
      "no object of the release left",
      async () => (await releaseObjects(e)).length === 0,
      async () => (await releaseObjects(e)).join("\n"),
    );
    await waitFor("no pod left in the driver's namespace", async () => {
      const pods = await e.json(["-n", DRIVER_NS, "get", "pods"]);
      return pods.items.length === 0;
    });
    const crds = await e.kubectl(["get", "crd", "-o", "name"]);
    assert.ok(!crds.includes("mountpoints3podattachments"), "the CRD, and every attachment, gone");
    const ns = await e.kubectl(["get", "namespaces", "-o", "name"]);
    assert.ok(!ns.includes(`namespace/${MOUNT_NS}\n`), "the Mountpoint Pods' namespace gone");
    // And the doctor, run on the host, says what is missing now.
    const doctor = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "doctor", "--json", "--skip", "local,s3"],
      env: { KUBECONFIG: e.c.env.KUBECONFIG },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(doctor.code, 1, "something failed");
    const report = JSON.parse(new TextDecoder().decode(doctor.stdout)) as {
      checks: { id: string; verdict: string; reason: string }[];
    };
    const crd = report.checks.find((c) => c.id === "cluster.crd");
    assert.equal(crd?.verdict, "failed", JSON.stringify(report.checks));
    assert.match(crd!.reason, /mountpoints3podattachments/);
  });
}
