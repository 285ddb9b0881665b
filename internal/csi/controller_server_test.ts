import assert from "node:assert/strict";
import { AlreadyExistsError } from "../errors/mod.ts";
import { MemoryObjectClient, type MemoryObjectClientOptions } from "../s3/memory_object_client.ts";
import { ControllerServer } from "./controller_server.ts";

const GiB = 2 ** 30;
const BUCKET = "team-bucket";
const SHARED = { bucketNaming: "shared", bucketName: BUCKET };
const CAP = { access_mode: { mode: "MULTI_NODE_MULTI_WRITER" }, mount: {} };

async function setup(opts: MemoryObjectClientOptions = {}) {
  const s3 = new MemoryObjectClient(opts);
  await s3.createBucket(BUCKET);
  const controller = () => new ControllerServer({ region: "us-east-1", clientFactory: () => s3 });
  return { s3, ctl: controller(), controller };
}

function req(name: string, bytes: number, parameters: Record<string, string> = SHARED) {
  return {
    name,
    capacity_range: { required_bytes: bytes },
    volume_capabilities: [CAP],
    parameters,
  };
}

Deno.test("createVolume() in shared mode records the volume on its marker and repeats idempotently", async () => {
  const { s3, ctl } = await setup();
  const first = await ctl.createVolume(req("pvc-a", GiB));
  const prefix = first.volume.volume_context.prefix;
  const marker = await s3.headObject(BUCKET, prefix);
  assert.equal(marker?.size, 0);
  assert.deepEqual(marker?.metadata, {
    "s3csi-volume-name": "pvc-a",
    "s3csi-capacity-bytes": String(GiB),
    "s3csi-parameters": "bucketNaming=shared s3Region=",
  });
  const again = await ctl.createVolume(req("pvc-a", GiB));
  assert.deepEqual(again, first);
  assert.equal(s3.requestCount("putObject"), 1, "the repeat writes nothing");
});

Deno.test("createVolume() in shared mode with the same name and another capacity or region is ALREADY_EXISTS", async () => {
  const { ctl } = await setup();
  await ctl.createVolume(req("pvc-b", GiB));
  await assert.rejects(ctl.createVolume(req("pvc-b", 2 * GiB)), (err) => {
    assert.ok(err instanceof AlreadyExistsError);
    assert.match(err.message, /capacity 1073741824 bytes/);
    return true;
  });
  await assert.rejects(
    ctl.createVolume(req("pvc-b", GiB, { ...SHARED, s3Region: "eu-west-3" })),
    (err) => err instanceof AlreadyExistsError && /different parameters/.test(err.message),
  );
  // A range that holds the recorded capacity is the same volume.
  const same = await ctl.createVolume({
    ...req("pvc-b", GiB / 2),
    capacity_range: { required_bytes: GiB / 2, limit_bytes: 2 * GiB },
  });
  assert.equal(same.volume.capacity_bytes, GiB / 2, "reports what was asked");
});

Deno.test("createVolume() records a name the marker's headers cannot carry as its digest", async () => {
  const { s3, ctl } = await setup();
  const name = " pvc-é ";
  const { volume } = await ctl.createVolume(req(name, GiB));
  const marker = await s3.headObject(BUCKET, volume.volume_context.prefix);
  assert.match(marker!.metadata!["s3csi-volume-name"], /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(await ctl.createVolume(req(name, GiB)), { volume });
  await assert.rejects(ctl.createVolume(req(name, 3 * GiB)), AlreadyExistsError);
});

Deno.test("createVolume() adopts a bare marker by recording the volume on it, then checks it", async () => {
  const { s3, ctl } = await setup();
  const { volume } = await ctl.createVolume(req("pvc-old", GiB));
  const prefix = volume.volume_context.prefix;
  // As an older version left it: a zero-byte marker without metadata.
  await s3.putObject(BUCKET, prefix, new Uint8Array(0));
  await s3.putObject(BUCKET, `${prefix}data.txt`, new Uint8Array([1]));
  const adopted = await ctl.createVolume(req("pvc-old", 2 * GiB));
  assert.equal(adopted.volume.capacity_bytes, 2 * GiB);
  const marker = await s3.headObject(BUCKET, prefix);
  assert.equal(marker?.metadata?.["s3csi-capacity-bytes"], String(2 * GiB));
  await assert.rejects(ctl.createVolume(req("pvc-old", 4 * GiB)), AlreadyExistsError);
  assert.ok(await s3.headObject(BUCKET, `${prefix}data.txt`), "the volume's data is untouched");
});

Deno.test("createVolume() leaves a marker that holds data as it is", async () => {
  const { s3, ctl } = await setup();
  const { volume } = await ctl.createVolume(req("pvc-odd", GiB));
  const prefix = volume.volume_context.prefix;
  const body = new TextEncoder().encode("not a marker");
  await s3.putObject(BUCKET, prefix, body);
  const puts = s3.requestCount("putObject");
  await ctl.createVolume(req("pvc-odd", 2 * GiB));
  assert.equal(s3.requestCount("putObject"), puts, "never overwritten");
  assert.deepEqual((await s3.getObject(BUCKET, prefix)).body, body);
});

/** Parks the first two marker lookups until both arrived, so two creates race on the PUT. */
function raceOnMarker(): MemoryObjectClientOptions["beforeRequest"] {
  let arrived = 0;
  let release!: () => void;
  const bothThere = new Promise<void>((r) => (release = r));
  return async (op) => {
    if (op !== "headObject" || arrived >= 2) return;
    if (++arrived === 2) release();
    await bothThere;
  };
}

Deno.test("createVolume() from two controllers at once with one name: both get the one volume", async () => {
  const { s3, controller } = await setup({ beforeRequest: raceOnMarker() });
  const [a, b] = await Promise.all([
    controller().createVolume(req("pvc-race", GiB)),
    controller().createVolume(req("pvc-race", GiB)),
  ]);
  assert.deepEqual(a, b);
  const page = await s3.listObjects(BUCKET, {});
  assert.deepEqual(page.objects.map((o) => o.key), [a.volume.volume_context.prefix]);
  assert.ok(s3.requestCount("headObject") >= 3, "the loser looked at the winner's record");
});

Deno.test("createVolume() from two controllers at once with one name and two capacities: one wins, one is ALREADY_EXISTS", async () => {
  const { s3, controller } = await setup({ beforeRequest: raceOnMarker() });
  // Exact ranges, so neither capacity fits the other's request whichever PUT lands first (a
  // bare 1 GiB minimum would accept a 2 GiB winner, as the CSI spec asks).
  const exactly = (bytes: number) => ({
    ...req("pvc-race2", bytes),
    capacity_range: { required_bytes: bytes, limit_bytes: bytes },
  });
  const results = await Promise.allSettled([
    controller().createVolume(exactly(GiB)),
    controller().createVolume(exactly(2 * GiB)),
  ]);
  const won = results.filter((r) => r.status === "fulfilled");
  const lost = results.filter((r) => r.status === "rejected");
  assert.equal(won.length, 1);
  assert.equal(lost.length, 1);
  assert.ok((lost[0] as PromiseRejectedResult).reason instanceof AlreadyExistsError);
  const winner = (won[0] as PromiseFulfilledResult<{ volume: { capacity_bytes: number } }>).value;
  const [marker] = (await s3.listObjects(BUCKET, {})).objects;
  const recorded = (await s3.headObject(BUCKET, marker.key))?.metadata?.["s3csi-capacity-bytes"];
  assert.equal(recorded, String(winner.volume.capacity_bytes));
});

Deno.test("createVolume() in dedicated mode still records tags and refuses another capacity", async () => {
  const { s3, ctl } = await setup();
  const { volume } = await ctl.createVolume(req("pvc-d", GiB, {}));
  const tags = await s3.getBucketTagging(volume.volume_id);
  assert.equal(tags["s3csi/volume-name"], "pvc-d");
  assert.equal(tags["s3csi/capacity-bytes"], String(GiB));
  assert.deepEqual(await ctl.createVolume(req("pvc-d", GiB, {})), { volume });
  await assert.rejects(ctl.createVolume(req("pvc-d", 2 * GiB, {})), AlreadyExistsError);
});
