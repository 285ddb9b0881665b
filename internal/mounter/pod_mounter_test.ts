import assert from "node:assert/strict";
import { FailedPreconditionError, UnavailableError } from "../errors/mod.ts";
import type { AttachmentLookup } from "../podmount/attachment_lookup.ts";
import { parseMountOptions } from "./mount_options.ts";
import type { MountSpec } from "./mounter.ts";
import { PodMounter } from "./pod_mounter.ts";

async function setup(lookup: AttachmentLookup) {
  const dir = await Deno.makeTempDir();
  const mounter = new PodMounter({
    region: "us-east-1",
    forcePathStyle: true,
    nodeName: "node-1",
    kubeletPath: dir,
    lookup,
    attachTimeoutMs: 300,
    pollMs: 20,
  });
  const spec: MountSpec = {
    volumeId: "vol-1",
    bucket: "b",
    options: parseMountOptions([], { cacheRoot: `${dir}/cache` }),
    authenticationSource: "driver",
    sourceDir: `${dir}/mnt/m1`,
    stateDir: `${dir}/state/m1`,
    mountId: "m1",
    workloadPodUid: "w-1",
  };
  return { dir, mounter, spec };
}

Deno.test("PodMounter refuses a spec without the workload pod's UID, saying how to get it", async () => {
  const { dir, mounter, spec } = await setup({ find: () => Promise.resolve(undefined) });
  try {
    const { workloadPodUid: _, ...noUid } = spec;
    await assert.rejects(
      mounter.ensureMounted(noUid),
      (e: unknown) =>
        e instanceof FailedPreconditionError && /podInfoOnMount: true/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PodMounter polls the lookup and times out with UNAVAILABLE naming the attachment and the last error", async () => {
  let calls = 0;
  const { dir, mounter, spec } = await setup({
    find(q) {
      calls++;
      assert.deepEqual(q, { nodeName: "node-1", volumeId: "vol-1", workloadPodUid: "w-1" });
      return calls === 1
        ? Promise.reject(new Error("connect ECONNREFUSED"))
        : Promise.resolve(undefined);
    },
  });
  try {
    await assert.rejects(mounter.ensureMounted(spec), (e: unknown) => {
      assert.ok(e instanceof UnavailableError);
      assert.match(
        e.message,
        /^Cannot mount bucket "b" for volume "vol-1": timed out after \d+ s waiting for a MountpointS3PodAttachment on node "node-1" that lists pod "w-1" and a Mountpoint Pod for it \(last lookup error: connect ECONNREFUSED\)$/,
      );
      return true;
    });
    assert.ok(calls > 2, `polled ${calls} times`);
    await assert.rejects(Deno.stat(spec.sourceDir), Deno.errors.NotFound, "nothing mounted");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PodMounter times out with UNAVAILABLE when the Mountpoint Pod never listens", async () => {
  const { dir, mounter, spec } = await setup({
    find: () => Promise.resolve({ name: "mp-1", uid: "pod-uid-1" }),
  });
  try {
    await assert.rejects(
      mounter.ensureMounted(spec),
      (e: unknown) =>
        e instanceof UnavailableError &&
        e.message.includes(
          `waiting for Mountpoint Pod "mount-s3/mp-1" to listen on "${dir}/pods/pod-uid-1/volumes/kubernetes.io~empty-dir/comm/mount.sock"`,
        ),
    );
    await assert.rejects(Deno.stat(spec.sourceDir), Deno.errors.NotFound, "nothing mounted");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
