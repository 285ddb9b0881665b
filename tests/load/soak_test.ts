/**
 * The soak: a real `s3csi node` (process mounter, real FUSE) serves four
 * volumes to four busy workloads (`soak_worker.ts`: writes, reads checked
 * byte for byte, listings checked name for name, deletes) for
 * `S3CSI_SOAK_SECONDS` (600 by default), while every volume's credentials
 * rotate each minute: new STS credentials, given by a NodePublishVolume
 * again on the same target, as the kubelet does when a secret changes.
 *
 * What must hold is counted:
 * - no workload call fails (there is no fault here to excuse one);
 * - each rotation is taken up: a proxy in front of MinIO sees the new
 *   access key sign requests soon after, and the old one stop;
 * - each mount server's RSS, sampled every 5 s, stays within its budget:
 *   the memory limit the reconciler gives a Mountpoint Pod whose
 *   `--max-memory` is the default 256 MiB (640 MiB: `maxMemoryMiB`), as
 *   `--max-memory` bounds the buffers and a reserve, not the runtime's own
 *   heap and native memory. The peak is printed beside `--max-memory`.
 */
import assert from "node:assert/strict";
import { canMount } from "../mount/harness.ts";
import { CsiClient, mountCapability } from "../support/csi_client.ts";
import { spawnNode } from "../support/driver.ts";
import { detachFuseMountsUnder, fuseMountsUnder } from "../support/helpers.ts";
import { minioClientConfig, startMinio } from "../support/minio.ts";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { PLUGIN, publishReq, target } from "../support/node_env.ts";
import { startSlowdownProxy } from "../support/slowdown_proxy.ts";
import { assumeRole } from "../support/sts.ts";
import { maxMemoryMiB } from "../../internal/reconciler/mountpoint_pod.ts";

const SOAK_SECONDS = Number(Deno.env.get("S3CSI_SOAK_SECONDS") ?? 600);
const ROTATE_MS = 60_000;
const VOLUMES = 4;
const MAX_MEMORY_MIB = 256;
/** The memory limit of a Mountpoint Pod that runs with --max-memory 256. */
const BUDGET_MIB = 640;
/** A rotation is taken up, and the old key dropped, within this long. */
const TAKE_UP_MS = 15_000;

async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

Deno.test({
  name:
    `soak: ${SOAK_SECONDS} s of mixed reads, writes, listings and deletes on ${VOLUMES} volumes, credentials rotated every minute: no call fails, every rotation taken up, RSS within the mount's memory budget`,
  ignore: !canMount,
  sanitizeResources: false,
  async fn() {
    const minio = await startMinio({ quiet: true });
    const url = new URL(minio.endpoint);
    const proxy = startSlowdownProxy({ hostname: url.hostname, port: Number(url.port) });
    const { driver, kubelet, socket } = await spawnNode(
      { ...minio, endpoint: proxy.endpoint },
      "soak-node",
    );
    const csi = new CsiClient(socket);
    const stateRoot = `${kubelet}/${PLUGIN}/state`;
    try {
      const s3 = new AwsObjectClient(minioClientConfig(minio));
      const vols = Array.from({ length: VOLUMES }, (_, v) => ({
        id: `soak-${v}`,
        target: target(kubelet, `pod-soak-${v}`, `pv-soak-${v}`),
      }));
      for (const v of vols) await s3.createBucket(v.id);
      s3.close();
      // Each volume's keys in the order they were given, with when.
      const given: { key: string; at: number }[][] = vols.map(() => []);
      const publish = async (i: number) => {
        const c = await assumeRole(minio);
        const v = vols[i];
        await csi.call(
          "Node",
          "NodePublishVolume",
          publishReq(v.id, { bucketName: v.id, authenticationSource: "secret" }, v.target, {
            volume_capability: mountCapability("MULTI_NODE_MULTI_WRITER", ["allow-delete"]),
            secrets: {
              access_key_id: c.accessKeyId,
              secret_access_key: c.secretAccessKey,
              session_token: c.sessionToken!,
            },
          }),
        );
        given[i].push({ key: c.accessKeyId, at: Date.now() });
      };
      for (let i = 0; i < VOLUMES; i++) await publish(i);

      const worker = new URL("./soak_worker.ts", import.meta.url).pathname;
      const workers = vols.map((v) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", worker, v.target, String(SOAK_SECONDS)],
          stdout: "piped",
          stderr: "piped",
        }).output()
      );
      const peak = new Map<number, number>();
      let running = true;
      const sampling = (async () => {
        while (running) {
          for (const id of await Array.fromAsync(Deno.readDir(stateRoot)).catch(() => [])) {
            const pid = Number(
              (await Deno.readTextFile(`${stateRoot}/${id.name}/pid`).catch(() => "")).trim(),
            );
            if (pid > 1) peak.set(pid, Math.max(peak.get(pid) ?? 0, await rssMiB(pid)));
          }
          await new Promise((r) => setTimeout(r, 5_000));
        }
      })();
      const started = Date.now();
      let rotations = 0;
      while (Date.now() - started + ROTATE_MS < SOAK_SECONDS * 1000) {
        await new Promise((r) => setTimeout(r, ROTATE_MS));
        for (let i = 0; i < VOLUMES; i++) await publish(i);
        rotations++;
      }
      const outputs = await Promise.all(workers);
      running = false;
      await sampling;

      const results = outputs.map((o, i) => {
        const text = new TextDecoder().decode(o.stdout).trim().split("\n").at(-1) ?? "";
        assert.equal(o.code, 0, `worker ${i}: ${new TextDecoder().decode(o.stderr)}`);
        return JSON.parse(text) as { ops: Record<string, number>; errors: string[] };
      });
      const keys = proxy.keys();
      const lateTakeUps: string[] = [];
      const lingering: string[] = [];
      for (const [i, list] of given.entries()) {
        for (const [n, g] of list.entries()) {
          const seen = keys.get(g.key);
          if (!seen || seen.first > g.at + TAKE_UP_MS) {
            lateTakeUps.push(`vol ${i} rotation ${n}: ${seen ? seen.first - g.at : "never"} ms`);
          }
          const next = list[n + 1];
          if (next && seen && seen.last > next.at + TAKE_UP_MS) {
            lingering.push(`vol ${i} key ${n}: used ${seen.last - next.at} ms after its successor`);
          }
        }
      }
      const totals = results.reduce((a, r) => {
        for (const [k, n] of Object.entries(r.ops)) a[k] = (a[k] ?? 0) + n;
        return a;
      }, {} as Record<string, number>);
      console.log(
        `soak: ${SOAK_SECONDS} s, ${rotations} rotations x ${VOLUMES} volumes; ops ${
          JSON.stringify(totals)
        }; peak RSS per mount (MiB): ${
          [...peak.values()].map((m) => m.toFixed(0)).join(", ")
        } at --max-memory ${MAX_MEMORY_MIB}, budget ${BUDGET_MIB}`,
      );
      for (const [i, r] of results.entries()) {
        assert.deepEqual(r.errors, [], `worker ${i}: no call fails`);
        for (const k of ["write", "read", "list", "delete"]) assert.ok(r.ops[k] > 0, `${i} ${k}`);
      }
      assert.ok(rotations >= 1, "at least one rotation");
      assert.deepEqual(lateTakeUps, [], "every rotation is taken up");
      assert.deepEqual(lingering, [], "and the old key stops");
      assert.equal(peak.size, VOLUMES, "one mount server per volume, sampled");
      assert.equal(maxMemoryMiB(BUDGET_MIB * 2 ** 20), MAX_MEMORY_MIB, "the budget's --max-memory");
      for (const [pid, mib] of peak) {
        assert.ok(mib <= BUDGET_MIB, `mount ${pid}: RSS ${mib.toFixed(0)} MiB > ${BUDGET_MIB}`);
      }
      for (const v of vols) {
        await csi.call("Node", "NodeUnpublishVolume", { volume_id: v.id, target_path: v.target });
      }
      assert.deepEqual(await fuseMountsUnder(kubelet), [], "no mount left");
    } finally {
      csi.close();
      await driver.stop();
      await detachFuseMountsUnder(kubelet);
      await new Deno.Command("pkill", { args: ["-f", stateRoot] }).output();
      await proxy.stop();
      await minio.stop();
      await Deno.remove(kubelet, { recursive: true }).catch(() => {});
    }
  },
});
