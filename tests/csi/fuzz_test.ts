/**
 * Property-based fuzzing of the CSI servers over their real gRPC socket: a
 * real `s3csi node --controller` (so Identity, Controller and Node at once)
 * against a real MinIO gets request messages whose every field is random,
 * hostile or missing (paths outside the kubelet directory, `..`, NUL, 10 KiB
 * strings, huge maps). What must hold for each call: an answer within its
 * deadline (no hang), the process still serving (no crash), and a status
 * the CSI spec gives that call for bad input. INTERNAL and UNKNOWN, what a
 * driver says when an input surprised it, are failures; so is anything
 * created outside the driver's own directories.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { status as Status } from "@grpc/grpc-js";
import { canMount } from "../mount/harness.ts";
import { mountCapability } from "../support/csi_client.ts";
import { withNode } from "../support/node_env.ts";

/** A few hundred per method in CI; S3CSI_FUZZ_RUNS asks for more. */
const RUNS = Number(Deno.env.get("S3CSI_FUZZ_RUNS") ?? 150);
const DEADLINE_MS = 20_000;

const ALLOWED = new Set([
  Status.OK,
  Status.INVALID_ARGUMENT,
  Status.NOT_FOUND,
  Status.ALREADY_EXISTS,
  Status.RESOURCE_EXHAUSTED,
  Status.FAILED_PRECONDITION,
  Status.ABORTED,
  Status.OUT_OF_RANGE,
  Status.UNIMPLEMENTED,
  Status.UNAVAILABLE,
  // Secrets that S3 refuses (the fuzzed access_key_id and secret_access_key).
  Status.PERMISSION_DENIED,
  Status.UNAUTHENTICATED,
]);

/** Strings a field may get: random (any code unit), hostile, huge, or empty. */
function text(kubelet: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.constantFrom(
      "",
      "..",
      "../../etc",
      "/etc/passwd",
      `${kubelet}/../etc`,
      `${kubelet}/pods/x/volumes/kubernetes.io~csi/pv/mount/../../../../../etc`,
      `${kubelet}/pods/x/volumes/kubernetes.io~csi/pv/mount`,
      "csi-s3-00000000-0000-0000-0000-000000000000",
      "bucket/csi-s3-00000000-0000-0000-0000-000000000000",
      "a\u0000b",
      "line\nbreak",
      "x".repeat(10 * 1024),
      "cache /etc",
      "prefix ../",
    ),
  );
}

function stringMap(kubelet: string): fc.Arbitrary<Record<string, string>> {
  const key = fc.oneof(
    fc.constantFrom(
      "bucketName",
      "mounter",
      "authenticationSource",
      "csi.storage.k8s.io/pod.uid",
      "prefix",
      "access_key_id",
      "secret_access_key",
    ),
    fc.string({ maxLength: 12 }),
  );
  return fc.oneof(
    fc.dictionary(key, text(kubelet), { maxKeys: 6 }),
    // A huge map.
    fc.constant(Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, "v"]))),
  );
}

/** A VolumeCapability with any of its parts missing. */
function capabilityRecord(kubelet: string) {
  return fc.record({
    mount: fc.option(
      fc.record({
        fs_type: text(kubelet),
        mount_flags: fc.array(text(kubelet), { maxLength: 4 }),
        volume_mount_group: text(kubelet),
      }, { requiredKeys: [] }),
      { nil: undefined },
    ),
    access_mode: fc.option(fc.record({ mode: fc.integer({ min: -1, max: 8 }) }), {
      nil: undefined,
    }),
  }, { requiredKeys: [] });
}

/**
 * Half the time a valid request with one field replaced (or none), so that
 * the paths behind the first check are reached too.
 */
function around(valid: Record<string, unknown>, random: fc.Arbitrary<Record<string, unknown>>) {
  return fc.tuple(fc.boolean(), random, fc.nat()).map(([keep, r, i]) => {
    if (!keep) return r;
    const keys = Object.keys(r);
    if (keys.length === 0 || i % 4 === 0) return valid;
    const k = keys[i % keys.length];
    return { ...valid, [k]: r[k] };
  });
}

const MOUNT_CAP = mountCapability("SINGLE_NODE_WRITER");
const VALID_CREATE = {
  name: "pvc-fuzz",
  capacity_range: { required_bytes: String(1 << 30) },
  volume_capabilities: [MOUNT_CAP],
  parameters: {},
};

/** Each method with the request messages it is fuzzed with. */
function methods(kubelet: string): [string, string, fc.Arbitrary<unknown>][] {
  const t = text(kubelet);
  const m = stringMap(kubelet);
  const capRecord = capabilityRecord(kubelet);
  const cap = fc.option(capRecord, { nil: undefined });
  const target = `${kubelet}/pods/fuzz/volumes/kubernetes.io~csi/pv-fuzz/mount`;
  return [
    ["Identity", "GetPluginInfo", fc.constant({})],
    ["Identity", "Probe", fc.constant({})],
    [
      "Controller",
      "CreateVolume",
      around(
        VALID_CREATE,
        fc.record({
          name: t,
          capacity_range: fc.option(
            fc.record({ required_bytes: fc.bigInt({ min: -1n, max: 1n << 62n }).map(String) }),
            { nil: undefined },
          ),
          volume_capabilities: fc.array(capRecord, { maxLength: 3 }),
          parameters: m,
          secrets: m,
        }, { requiredKeys: [] }),
      ),
    ],
    ["Controller", "DeleteVolume", fc.record({ volume_id: t, secrets: m }, { requiredKeys: [] })],
    [
      "Controller",
      "ValidateVolumeCapabilities",
      fc.record({
        volume_id: t,
        volume_context: m,
        volume_capabilities: fc.array(capRecord, { maxLength: 3 }),
        parameters: m,
      }, { requiredKeys: [] }),
    ],
    ["Controller", "ControllerGetCapabilities", fc.constant({})],
    [
      "Node",
      "NodePublishVolume",
      around(
        {
          volume_id: "vol-fuzz",
          target_path: target,
          volume_capability: MOUNT_CAP,
          volume_context: { bucketName: "fuzz-bucket" },
          readonly: false,
        },
        fc.record({
          volume_id: t,
          target_path: t,
          staging_target_path: t,
          volume_capability: cap,
          volume_context: m,
          secrets: m,
          readonly: fc.boolean(),
        }, { requiredKeys: [] }),
      ),
    ],
    [
      "Node",
      "NodeUnpublishVolume",
      fc.record({ volume_id: t, target_path: t }, {
        requiredKeys: [],
      }),
    ],
    ["Node", "NodeGetInfo", fc.constant({})],
    ["Node", "NodeGetCapabilities", fc.constant({})],
  ];
}

/** The paths under `dir` (to `depth` levels), to compare before and after. */
async function tree(dir: string, depth: number): Promise<Set<string>> {
  const out = new Set<string>();
  const walk = async (d: string, left: number) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      out.add(p);
      if (e.isDirectory && left > 1) await walk(p, left - 1).catch(() => {});
    }
  };
  await walk(dir, depth).catch(() => {});
  return out;
}

/** Where a path that escaped the kubelet directory would land (other tests' temp dirs aside). */
const WATCHED: [string, number][] = [["/etc", 8], ["/var/tmp", 1], ["/", 1]];

Deno.test({
  name:
    "fuzz: every CSI call with random, hostile or missing fields answers in time with a status the spec allows, and creates nothing outside the driver's directories",
  ignore: !canMount,
  sanitizeResources: false,
  async fn() {
    await withNode(async ({ csi, kubelet, driver, s3 }) => {
      await s3.createBucket("fuzz-bucket");
      // The valid requests the fuzzing starts from are valid.
      await csi.call("Controller", "CreateVolume", VALID_CREATE);
      const before = await Promise.all(WATCHED.map(([d, n]) => tree(d, n)));
      const seen: Record<string, Record<string, number>> = {};
      const examples: Record<string, Record<string, string>> = {};
      for (const [service, method, arb] of methods(kubelet)) {
        await fc.assert(
          fc.asyncProperty(arb, async (req) => {
            let code: number = Status.OK;
            let detail = "";
            try {
              await csi.call(service as "Node", method, req, DEADLINE_MS);
            } catch (err) {
              code = (err as { code: number }).code;
              detail = (err as { details?: string }).details ?? String(err);
            }
            const key = `${service}.${method}`;
            (seen[key] ??= {})[Status[code]] = (seen[key]?.[Status[code]] ?? 0) + 1;
            (examples[key] ??= {})[Status[code]] ??= detail.slice(0, 160);
            assert.ok(
              ALLOWED.has(code),
              `${key} answered ${Status[code]}: ${JSON.stringify(req).slice(0, 300)}`,
            );
          }),
          { numRuns: RUNS },
        );
      }
      console.log(`CSI fuzz, answers by method: ${JSON.stringify(seen)}`);
      console.log(`CSI fuzz, an answer of each kind: ${JSON.stringify(examples)}`);
      // Still serving.
      await csi.call("Identity", "Probe", {});
      const after = await Promise.all(WATCHED.map(([d, n]) => tree(d, n)));
      for (let i = 0; i < WATCHED.length; i++) {
        const added = [...after[i]].filter((p) =>
          !before[i].has(p) && !p.startsWith(kubelet) && !/^\/var\/tmp\/s3csi-/.test(p)
        );
        assert.deepEqual(added, [], `created under ${WATCHED[i][0]}`);
      }
      assert.doesNotMatch(driver.output(), /panic|Uncaught|TypeError/);
    });
  },
});
