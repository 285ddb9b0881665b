/**
 * End-to-end scenarios of the driver's own pods failing under running
 * workloads:
 * - a Mountpoint Pod is deleted while its workload writes and reads: it
 *   hands its live mount over, the reconciler creates it again under its
 *   name, the node hands the connection to the new pod, and the workload
 *   is never restarted and sees no error;
 * - the node plugin's pod is deleted and comes back: a workload that keeps
 *   writing and reading meanwhile sees no error (its mount lives in the
 *   Mountpoint Pod, not in the plugin), and the new plugin publishes the
 *   next workload of the same volume onto the same Mountpoint Pod;
 * - the reconciler's leader is SIGKILLed while workloads are being created:
 *   another process (the other replica, or the killed one's restarted
 *   container: identities name processes) takes the Lease over, every
 *   workload runs, and each
 *   sharing key has exactly one attachment and one Mountpoint Pod, with each
 *   workload listed once.
 *
 * @module
 */
import assert from "node:assert/strict";
import { waitFor } from "./deploy.ts";
import { DRIVER, DRIVER_NS, type E2e, MOUNT_NS, type Step, workload } from "./harness.ts";
import type { SharedVolume } from "./workloads.ts";

/** Writes tick/N and reads it back every 100 ms; logs `ok N` every 10th, any failure at once. */
const TICKER = `
Deno.mkdirSync("/data/tick", { recursive: true });
let n = 0;
setInterval(() => {
  try {
    Deno.writeTextFileSync("/data/tick/" + n, String(n));
    if (Deno.readTextFileSync("/data/tick/" + n) !== String(n)) console.log("mismatch " + n);
    if (n % 10 === 0) console.log("ok " + n);
    n++;
  } catch (e) { console.log("error " + n + " " + e.message); }
}, 100);`;

/** The highest `ok N` the ticker has logged (-1 for none); throws on any failure line. */
async function ticks(e: E2e, pod: string): Promise<number> {
  const log = await e.kubectl(["logs", pod]);
  const bad = log.split("\n").filter((l) => /^(error|mismatch) /.test(l));
  assert.deepEqual(bad, [], `the ticker ${pod} failed`);
  return Math.max(-1, ...[...log.matchAll(/^ok (\d+)$/gm)].map((m) => Number(m[1])));
}

/** The node plugin's pods: names, and whether all are ready and registered. */
async function nodePlugin(e: E2e): Promise<{ names: string[]; ready: boolean }> {
  const pods = (await e.driverPods("node")) as {
    metadata: { name: string; deletionTimestamp?: string };
    status: unknown;
  }[];
  const ready = pods.length === 1 && !pods[0].metadata.deletionTimestamp &&
    // deno-lint-ignore no-explicit-any
    ((pods[0].status as any).conditions ?? []).some((c: { type: string; status: string }) =>
      c.type === "Ready" && c.status === "True"
    );
  return { names: pods.map((p) => p.metadata.name), ready };
}

export async function mountpointPodDeleted(e: E2e, step: Step, vol: SharedVolume): Promise<void> {
  await step(
    "deleting a Mountpoint Pod under a writing and reading workload: its mount is handed to the pod created again, the workload goes on",
    async () => {
      await e.apply(workload(e.c, "survivor", vol.claim, TICKER));
      await e.running("survivor");
      await waitFor("the survivor's first writes", async () => (await ticks(e, "survivor")) >= 10);
      const uid = await e.uid("survivor");
      const [mountpointPod] = Object.entries(await e.workloadsByMountpointPod())
        .filter(([, uids]) => uids.includes(uid)).map(([pod]) => pod);
      assert.ok(mountpointPod, "no Mountpoint Pod lists the survivor");
      const before = await e.uid(mountpointPod, MOUNT_NS);
      await e.kubectl(["-n", MOUNT_NS, "delete", "pod", mountpointPod, "--wait=true"]);
      await waitFor(
        `${mountpointPod} created again and running`,
        async () => {
          const p = await e.json(["-n", MOUNT_NS, "get", "pod", mountpointPod]).catch(() => null);
          return p?.metadata.uid !== before && p?.status?.phase === "Running";
        },
        e.describe(mountpointPod, MOUNT_NS),
      );
      // The ticker fails on any error line: it went on through the hand-over, and goes on.
      const at = await ticks(e, "survivor");
      await waitFor(
        `the survivor past ${at + 20}`,
        async () => (await ticks(e, "survivor")) > at + 20,
        e.describe(mountpointPod, MOUNT_NS),
      );
      assert.ok(await e.s3.headObject(vol.bucket, `tick/${at + 20}`));
      const survivor = await e.json(["get", "pod", "survivor"]);
      assert.equal(survivor.status.containerStatuses[0].restartCount, 0, "never restarted");
      const logs = await e.kubectl(["-n", MOUNT_NS, "logs", mountpointPod]);
      assert.match(logs, /taking over a live mount/, "the new pod took the mount over");
      await e.kubectl(["delete", "pod", "survivor", "--wait=true"]);
    },
  );
}

export async function nodePluginRestart(e: E2e, step: Step, vol: SharedVolume): Promise<void> {
  await step(
    "restarting the node plugin's pod leaves running workloads writing and reading",
    async () => {
      await e.apply(workload(e.c, "ticker", vol.claim, TICKER));
      await e.running("ticker");
      await waitFor("the ticker's first writes", async () => (await ticks(e, "ticker")) >= 10);
      const tickerUid = await e.uid("ticker");
      const [mountpointPod] = Object.entries(await e.workloadsByMountpointPod())
        .filter(([, uids]) => uids.includes(tickerUid)).map(([pod]) => pod);
      assert.ok(mountpointPod, "no Mountpoint Pod lists the ticker");
      const before = (await nodePlugin(e)).names;
      await e.kubectl(["-n", DRIVER_NS, "delete", "pod", ...before, "--wait=true"]);
      await waitFor(
        "a new node plugin pod, ready and registered",
        async () => {
          const now = await nodePlugin(e);
          if (!now.ready || before.includes(now.names[0])) return false;
          const csiNode = await e.json(["get", "csinode", e.c.env.S3CSI_CLUSTER_NODE]);
          return (csiNode.spec?.drivers ?? []).some((d: { name: string }) => d.name === DRIVER);
        },
        () =>
          e.kubectl([
            "-n",
            DRIVER_NS,
            "describe",
            "pods",
            "-l",
            "app.kubernetes.io/component=node",
          ]),
      );
      // The ticker went on through the restart and goes on after it.
      const at = await ticks(e, "ticker");
      await waitFor(`the ticker past ${at + 20}`, async () => (await ticks(e, "ticker")) > at + 20);
      assert.ok(await e.s3.headObject(vol.bucket, `tick/${at + 20}`));
      const ticker = await e.json(["get", "pod", "ticker"]);
      assert.equal(ticker.status.containerStatuses[0].restartCount, 0);

      // The new plugin publishes the next workload onto the same Mountpoint Pod.
      const read = `console.log("read " + Deno.readTextFileSync("/data/tick/${at}"));`;
      await e.apply(workload(e.c, "after-restart", vol.claim, read));
      assert.match(await e.running("after-restart"), new RegExp(`^read ${at}$`, "m"));
      const byPod = await e.workloadsByMountpointPod();
      assert.ok(
        byPod[mountpointPod]?.includes(await e.uid("after-restart")),
        `after-restart is not on ${mountpointPod}: ${JSON.stringify(byPod)}`,
      );
    },
  );
}

/** The host PID of the reconciler process of controller pod `pod`. */
async function reconcilerPid(pod: string): Promise<number> {
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
      if (!cmdline.split("\0").includes("reconciler")) continue;
      const environ = (await Deno.readTextFile(`/proc/${entry.name}/environ`)).split("\0");
      if (environ.includes(`POD_NAME=${pod}`)) return Number(entry.name);
    } catch {
      // The process ended while we looked.
    }
  }
  throw new Error(`no reconciler process of pod ${pod} on this host`);
}

export async function leaderKilled(e: E2e, step: Step, vol: SharedVolume): Promise<void> {
  await step(
    "the reconciler's leader is killed while workloads are created: another process takes over, no duplicates",
    async () => {
      const lease = async () =>
        (await e.json(["-n", DRIVER_NS, "get", "lease", "s3csi-reconciler"])).spec
          .holderIdentity as string ?? "";
      const controllers: string[] = (await e.driverPods("controller")).map((
        p: { metadata: { name: string } },
      ) => p.metadata.name);
      assert.equal(controllers.length, 2, `controller pods: ${controllers}`);
      const holder = await waitFor("a reconciler leader", lease);
      const leader = controllers.find((p) => holder === p || holder.startsWith(`${p}_`));
      assert.ok(leader, `the lease holder ${holder} is none of ${controllers}`);
      const keysBefore = Object.keys(await e.workloadsByMountpointPod()).length;

      const names = ["lk-1", "lk-2", "lk-3"];
      await e.apply(workload(e.c, names[0], vol.claim, "", {}));
      Deno.kill(await reconcilerPid(leader), "SIGKILL");
      await e.apply(workload(e.c, names[1], vol.claim, "", {}));
      await e.apply(workload(e.c, names[2], vol.claim, "", { fsGroup: 3000 }));

      // Identities name processes: the killed leader's restarted container
      // is a new candidate and may win the race with the other replica.
      // Either is a correct take-over; the old identity holding on is not.
      const seen = new Set<string>();
      await waitFor(
        `the lease taken over from ${holder}`,
        async () => {
          const now = await lease();
          seen.add(now);
          return now !== "" && now !== holder;
        },
        () => Promise.resolve(`holders seen: ${[...seen].join(", ")}`),
      );
      for (const name of names) await e.running(name);
      // One Mountpoint Pod more (fsGroup 3000); lk-1 and lk-2 joined the existing one.
      const byPod = await e.workloadsByMountpointPod();
      assert.equal(Object.keys(byPod).length, keysBefore + 1, JSON.stringify(byPod));
      const pods = await e.mountpointPods();
      assert.deepEqual(pods.sort(), Object.keys(byPod).sort());
      const listed = Object.values(byPod).flat();
      assert.equal(listed.length, new Set(listed).size, `a workload listed twice: ${listed}`);
      for (const name of names) assert.ok(listed.includes(await e.uid(name)), `${name} unlisted`);
      const atts = await e.attachments();
      const keys = atts.map((a) =>
        `${a.spec.persistentVolumeName}/${a.spec.workloadFSGroup ?? ""}`
      );
      assert.equal(keys.length, new Set(keys).size, `duplicate attachments: ${keys}`);
    },
  );
}
