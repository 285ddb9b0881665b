/**
 * Secrets go nowhere they are not meant to. A real `s3csi node --controller`
 * with debug logging runs every flow (CreateVolume with provisioner secrets,
 * NodePublishVolume with node-publish secrets, I/O through the mount,
 * unpublish, DeleteVolume) with three distinct credential sets: the
 * driver's own (MinIO's root keys, in the node's environment as a
 * Kubernetes secretKeyRef would put them), and two sets of temporary
 * credentials from STS for the secrets. Then every trace is searched for
 * the secret parts (secret keys and session tokens): the node's log, the
 * `cmdline` and `environ` of every process it started (the mount server,
 * sampled while it serves), and every file under the kubelet directory
 * except the one 0600 credentials file of a mount. Only the node's own
 * environment may hold the driver's secret, as it was given.
 */
import assert from "node:assert/strict";
import { canMount } from "../mount/harness.ts";
import { pids } from "../support/mod.ts";
import { assumeRole } from "../support/sts.ts";
import { mountCapability } from "../support/csi_client.ts";
import { publishReq, target, withNode } from "../support/node_env.ts";

/** The paths of every file under `dir` whose content contains any of `needles`. */
async function filesHolding(dir: string, needles: string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p).catch(() => {});
      else if (e.isFile) {
        const text = await Deno.readTextFile(p).catch(() => "");
        if (needles.some((n) => text.includes(n))) found.push(p);
      }
    }
  };
  await walk(dir);
  return found;
}

Deno.test({
  name:
    "secrets: with debug logging, no secret key or session token appears in a log, a process's cmdline or environ, or a file but the mount's 0600 credentials file",
  ignore: !canMount,
  sanitizeResources: false,
  async fn() {
    await withNode(async ({ csi, s3, kubelet, minio, driver, stateRoot }) => {
      const provisioner = await assumeRole(minio);
      const publisher = await assumeRole(minio);
      const asSecret = (c: typeof provisioner) => ({
        access_key_id: c.accessKeyId,
        secret_access_key: c.secretAccessKey,
        session_token: c.sessionToken!,
      });
      const secretParts = [
        minio.secretAccessKey,
        provisioner.secretAccessKey,
        provisioner.sessionToken!,
        publisher.secretAccessKey,
        publisher.sessionToken!,
      ];
      const created = await csi.call("Controller", "CreateVolume", {
        name: "pvc-secrets",
        capacity_range: { required_bytes: 1 << 30 },
        volume_capabilities: [mountCapability()],
        parameters: {},
        secrets: asSecret(provisioner),
      }) as { volume: { volume_id: string; volume_context: Record<string, string> } };
      const id = created.volume.volume_id;
      const t = target(kubelet, "pod-secrets");
      await csi.call(
        "Node",
        "NodePublishVolume",
        publishReq(id, created.volume.volume_context, t, { secrets: asSecret(publisher) }),
      );
      await Deno.writeTextFile(`${t}/f.txt`, "through the mount");
      assert.equal(await Deno.readTextFile(`${t}/f.txt`), "through the mount");
      assert.ok(await s3.headObject(id, "f.txt"), "the write reached the bucket");

      // While it serves: the mount server's command line and environment.
      const servers = await pids(stateRoot);
      assert.ok(servers.length >= 1, "a mount server runs");
      const [node] = await pids(driver.socket);
      for (const pid of [...servers]) {
        for (const part of ["cmdline", "environ"]) {
          const text = await Deno.readTextFile(`/proc/${pid}/${part}`).catch(() => "");
          const leaked = secretParts.filter((s) => text.includes(s));
          assert.deepEqual(leaked.length, 0, `a secret in /proc/${pid}/${part}`);
        }
      }
      const nodeCmdline = await Deno.readTextFile(`/proc/${node}/cmdline`);
      assert.ok(
        !secretParts.some((s) => nodeCmdline.includes(s)),
        "no secret in the node's cmdline",
      );
      const nodeEnviron = await Deno.readTextFile(`/proc/${node}/environ`);
      assert.deepEqual(
        secretParts.filter((s) => nodeEnviron.includes(s)),
        [minio.secretAccessKey],
        "the node's environment holds its own secret only",
      );

      // Files: only the mount's credentials file, 0600, holds the publish secret.
      const holding = await filesHolding(kubelet, secretParts);
      for (const path of holding) {
        assert.match(path, /\/credentials$/, `a secret in ${path}`);
        const st = await Deno.stat(path);
        assert.equal(st.mode! & 0o777, 0o600, `${path} is 0600`);
        // The process mounter's server runs as the node's user and reads it.
        assert.equal(st.uid, Deno.uid(), `${path} is owned by the user that reads it`);
        const text = await Deno.readTextFile(path);
        assert.ok(!text.includes(minio.secretAccessKey), "the driver's secret is never written");
        assert.ok(!text.includes(provisioner.secretAccessKey), "nor the provisioner's");
      }
      // The scan finds what is there: the publish secret is in exactly that file.
      assert.equal(holding.length, 1, `one credentials file: ${holding}`);

      await csi.call("Node", "NodeUnpublishVolume", { volume_id: id, target_path: t });
      await s3.deleteObject(id, "f.txt");
      await csi.call("Controller", "DeleteVolume", {
        volume_id: id,
        secrets: asSecret(provisioner),
      });
      assert.deepEqual(
        await filesHolding(kubelet, secretParts),
        [],
        "nothing left after unpublish",
      );
      const log = driver.output();
      assert.ok(log.includes('"level":"debug"'), "debug logging was on");
      assert.deepEqual(secretParts.filter((s) => log.includes(s)), [], "no secret in the log");
    }, ["--log-level", "debug"]);
  },
});
