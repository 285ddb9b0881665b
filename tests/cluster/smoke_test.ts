/**
 * The cluster tier's smoke test: a real single-node cluster
 * (`scripts/cluster up`: etcd, API server, controller-manager, scheduler,
 * kubelet, containerd) runs pods from the images the project builds, with
 * `imagePullPolicy: Never` since nothing can be pulled. It checks what the
 * driver's deployment relies on: the node is Ready; the s3csi image runs a
 * role offline, through its entry point and as `s3csi`, also under the
 * `restricted` PodSecurity profile (non-root, read-only root, no
 * capabilities), as a Mountpoint Pod will; a hostNetwork pod reaches the API
 * server on 127.0.0.1 (there is no kube-proxy) and a pod on the pod network
 * reaches a server on the host's bridge address; the csi-provisioner image
 * starts. The cluster is torn down whatever happens, and a mount a pod left
 * behind (propagated mounts outlive pods) must be gone afterwards.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readMountInfo } from "../../internal/fuse/mod.ts";
import { DRIVER_NAME, VERSION } from "../../internal/version.ts";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { minioClientConfig, startMinio } from "../support/minio.ts";
import { type Cluster, clusterDown, clusterUp, type Pod } from "./cluster.ts";

const isRoot = Deno.uid() === 0;
if (!isRoot) {
  console.warn("tests/cluster: skipped: running a kubelet and containerd needs root");
}

/** A pod that runs one container to its end, from a local image. */
function pod(name: string, container: Record<string, unknown>, spec = {}, namespace?: string): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      ...spec,
      containers: [{ name: "main", imagePullPolicy: "Never", ...container }],
    },
  };
}

const versionLine = `s3csi ${VERSION} (${DRIVER_NAME})`;

/** A script for the s3csi image's Deno: GET /version with the pod's service-account token. */
const API_PROBE = `
const sa = "/var/run/secrets/kubernetes.io/serviceaccount/";
const client = Deno.createHttpClient({ caCerts: [Deno.readTextFileSync(sa + "ca.crt")] });
const url = "https://" + Deno.env.get("KUBERNETES_SERVICE_HOST") + ":" +
  Deno.env.get("KUBERNETES_SERVICE_PORT") + "/version";
const res = await fetch(url, {
  client, headers: { authorization: "Bearer " + Deno.readTextFileSync(sa + "token") },
});
console.log("api " + res.status + " " + (await res.json()).gitVersion);
`;

/** Prints the body of GET <url>. */
const FETCH = `console.log(await (await fetch(Deno.args[0])).text());`;

/** Mounts a tmpfs at the directory given, through libc (the image has no mount(8)). */
const MOUNT_TMPFS = `
const dir = Deno.args[0];
Deno.mkdirSync(dir, { recursive: true });
const libc = Deno.dlopen("libc.so.6", {
  mount: { parameters: ["buffer", "buffer", "buffer", "usize", "pointer"], result: "i32" },
});
const c = (s) => new TextEncoder().encode(s + "\\0");
const rc = libc.symbols.mount(c("s3csi-smoke"), c(dir), c("tmpfs"), 0n, null);
console.log("mount " + rc);
`;

/**
 * In the s3csi image, with /dev/fuse given: `s3csi doctor --help`, then
 * `s3csi mount` of a bucket (daemon mode: it returns once the mount serves),
 * a file read back through it, and the mount detached.
 */
const MOUNT_AND_READ = `
const [bucket, endpoint] = Deno.args;
const run = (args) => new Deno.Command("s3csi", { args, stdout: "piped", stderr: "piped" }).output();
const doctor = await run(["doctor", "--help"]);
console.log("doctor " + doctor.code);
Deno.mkdirSync("/work/b");
const m = await run(["mount", bucket, "/work/b", "--endpoint-url", endpoint]);
if (m.code !== 0) console.log(new TextDecoder().decode(m.stderr));
console.log("mount " + m.code);
console.log("read " + Deno.readTextFileSync("/work/b/hello.txt").trim());
const libc = Deno.dlopen("libc.so.6", { umount2: { parameters: ["buffer", "i32"], result: "i32" } });
console.log("umount " + libc.symbols.umount2(new TextEncoder().encode("/work/b\\0"), 2));
`;

/** Mount points at or below any of `dirs`. */
async function mountsUnder(dirs: string[]): Promise<string[]> {
  return (await readMountInfo()).map((m) => m.mountPoint)
    .filter((p) => dirs.some((d) => p === d || p.startsWith(d + "/")));
}

Deno.test({
  name: "cluster: pods from the project's images run on a real single-node cluster",
  ignore: !isRoot,
  async fn(t) {
    const started = Date.now();
    let cluster: Cluster | undefined;
    try {
      cluster = await clusterUp();
      console.log(`cluster up in ${((Date.now() - started) / 1000).toFixed(1)}s`);
      const c = cluster;
      const node = c.env.S3CSI_CLUSTER_NODE;

      await t.step("the node is Ready under the name scripts/cluster gives", async () => {
        const n = JSON.parse(await c.kubectl(["get", "node", node, "-o", "json"]));
        const ready = n.status.conditions.find((x: { type: string }) => x.type === "Ready");
        assert.equal(ready?.status, "True");
      });

      await t.step("the s3csi image prints its version through its entry point", async () => {
        const r = await c.runPod(
          pod("s3csi-version", { image: c.env.S3CSI_IMAGE, args: ["version"] }),
        );
        assert.equal(r.phase, "Succeeded", r.log);
        assert.equal(r.nodeName, node);
        // One line: no "Download" or "Initialize" lines, everything came cached.
        assert.equal(r.log.trim(), versionLine);
      });

      await t.step("`s3csi` runs under the restricted PodSecurity profile", async () => {
        const ns = "smoke-restricted";
        await c.kubectl(
          ["apply", "-f", "-"],
          JSON.stringify({
            apiVersion: "v1",
            kind: "Namespace",
            metadata: { name: ns, labels: { "pod-security.kubernetes.io/enforce": "restricted" } },
          }),
        );
        await c.kubectl(["-n", ns, "wait", "--for=create", "serviceaccount/default"]);
        const r = await c.runPod(pod("s3csi-restricted", {
          image: c.env.S3CSI_IMAGE,
          command: ["s3csi", "version"],
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
          },
        }, {
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            seccompProfile: { type: "RuntimeDefault" },
          },
        }, ns));
        assert.equal(r.phase, "Succeeded", r.log);
        assert.equal(r.log.trim(), versionLine);
      });

      await t.step("a hostNetwork pod reaches the API server on 127.0.0.1", async () => {
        const api = new URL(c.env.S3CSI_CLUSTER_API);
        const r = await c.runPod(pod("api-reach", {
          image: c.env.S3CSI_IMAGE,
          command: ["/usr/local/bin/deno", "eval", API_PROBE],
          env: [
            { name: "KUBERNETES_SERVICE_HOST", value: api.hostname },
            { name: "KUBERNETES_SERVICE_PORT", value: api.port },
          ],
        }, { hostNetwork: true }));
        assert.equal(r.phase, "Succeeded", r.log);
        const server = JSON.parse(await c.kubectl(["version", "-o", "json"])).serverVersion;
        assert.equal(r.log.trim(), `api 200 ${server.gitVersion}`);
      });

      await t.step("a pod on the pod network reaches a server on the host", async () => {
        const hostname = c.env.S3CSI_CLUSTER_HOST_IP;
        const token = crypto.randomUUID();
        const server = Deno.serve({ hostname, port: 0, onListen() {} }, () => new Response(token));
        try {
          const url = `http://${hostname}:${server.addr.port}/`;
          const r = await c.runPod(pod("host-reach", {
            image: c.env.S3CSI_IMAGE,
            command: ["/usr/local/bin/deno", "eval", FETCH, url],
          }));
          assert.equal(r.phase, "Succeeded", r.log);
          assert.equal(r.log.trim(), token);
        } finally {
          await server.shutdown();
        }
      });

      await t.step("the csi-provisioner image starts", async () => {
        const image = c.env.CSI_PROVISIONER_IMAGE;
        const r = await c.runPod(pod("csi-provisioner-version", { image, args: ["--version"] }));
        assert.equal(r.phase, "Succeeded", r.log);
        assert.equal(r.log.trim(), `/csi-provisioner ${image.replace(/^.*:/, "")}`);
      });

      await t.step("the image mounts a bucket with /dev/fuse and reads a file back", async () => {
        const minio = await startMinio({ host: c.env.S3CSI_CLUSTER_HOST_IP, quiet: true });
        try {
          const s3 = new AwsObjectClient(minioClientConfig(minio));
          await s3.createBucket("smoke");
          await s3.putObject("smoke", "hello.txt", new TextEncoder().encode("hello from S3\n"));
          s3.close();
          const r = await c.runPod(pod("s3csi-mount", {
            image: c.env.S3CSI_IMAGE,
            command: ["/usr/local/bin/deno", "eval", MOUNT_AND_READ, "smoke", minio.endpoint],
            // Not /app: an eval there would take the program's own deno.json and node_modules.
            workingDir: "/work",
            env: [
              { name: "AWS_ACCESS_KEY_ID", value: minio.accessKeyId },
              { name: "AWS_SECRET_ACCESS_KEY", value: minio.secretAccessKey },
              { name: "AWS_REGION", value: minio.region },
            ],
            // mount(2) needs the privilege; the node plugin has it the same way.
            securityContext: { privileged: true },
            volumeMounts: [
              { name: "fuse", mountPath: "/dev/fuse" },
              { name: "work", mountPath: "/work" },
            ],
          }, {
            volumes: [
              { name: "fuse", hostPath: { path: "/dev/fuse", type: "CharDevice" } },
              { name: "work", emptyDir: {} },
            ],
          }));
          assert.equal(r.phase, "Succeeded", r.log);
          assert.deepEqual(r.log.trim().split("\n"), [
            "doctor 0",
            "mount 0",
            "read hello from S3",
            "umount 0",
          ]);
        } finally {
          await minio.stop();
        }
      });

      await t.step("a mount made in a pod propagates to the host and outlives it", async () => {
        const host = `${c.env.S3CSI_KUBELET_DIR}/s3csi-smoke`;
        const r = await c.runPod(pod("propagate", {
          image: c.env.S3CSI_IMAGE,
          command: ["/usr/local/bin/deno", "eval", MOUNT_TMPFS, "/host/left"],
          securityContext: { privileged: true },
          volumeMounts: [{ name: "host", mountPath: "/host", mountPropagation: "Bidirectional" }],
        }, { volumes: [{ name: "host", hostPath: { path: host, type: "DirectoryOrCreate" } }] }));
        assert.equal(r.log.trim(), "mount 0");
        assert.deepEqual(await mountsUnder([host]), [`${host}/left`]);
      });
    } finally {
      const stopping = Date.now();
      await clusterDown();
      console.log(`cluster down in ${((Date.now() - stopping) / 1000).toFixed(1)}s`);
    }
    const env = cluster?.env;
    if (env) {
      assert.deepEqual(await mountsUnder([env.S3CSI_KUBELET_DIR, env.S3CSI_CLUSTER_DIR]), []);
    }
  },
});
