import assert from "node:assert/strict";
import { maxMemoryMiB, mountpointPod, type PodSettings } from "./mountpoint_pod.ts";
import { DEFAULT_RESOURCES } from "./mountpoint_pod.ts";
import { pv } from "./testing.ts";
import { quantityValue } from "./quantity.ts";

const ID = { name: "mp-1", nodeName: "node-1", nodeLabel: "node-1", volumeLabel: "abc" };
const SETTINGS: PodSettings = {
  image: "registry/s3csi:1.2.3",
  priorityClassName: "s3csi-mountpoint",
  version: "1.2.3",
  resources: DEFAULT_RESOURCES,
};

Deno.test("mountpoint pod: placed on its node, tolerating every taint, in mount-s3", () => {
  const p = mountpointPod(ID, pv("pv", "vol"), SETTINGS);
  assert.equal(p.metadata?.namespace, "mount-s3");
  assert.equal(p.spec?.nodeName, "node-1");
  assert.deepEqual(p.spec?.tolerations, [{ operator: "Exists" }]);
  assert.equal(p.spec?.priorityClassName, "s3csi-mountpoint");
  assert.equal(p.spec?.restartPolicy, "OnFailure");
  assert.deepEqual(p.metadata?.labels, {
    "s3.csi.scality.com/component": "mountpoint-pod",
    "s3.csi.scality.com/node": "node-1",
    "s3.csi.scality.com/volume": "abc",
    "s3.csi.scality.com/version": "1.2.3",
  });
});

Deno.test("mountpoint pod: the restricted profile: non-root, no capabilities, read-only root", () => {
  const spec = mountpointPod(ID, pv("pv", "vol"), SETTINGS).spec!;
  assert.deepEqual(spec.securityContext, {
    runAsNonRoot: true,
    runAsUser: 1000,
    runAsGroup: 1000,
    seccompProfile: { type: "RuntimeDefault" },
  });
  assert.equal(spec.automountServiceAccountToken, false);
  assert.equal(spec.hostNetwork, undefined);
  const [c] = spec.containers;
  assert.deepEqual(c.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
  });
  assert.equal(c.image, "registry/s3csi:1.2.3");
  assert.deepEqual(c.command, ["s3csi"]);
  assert.deepEqual(c.args?.slice(0, 3), ["mount", "--from-socket", "/comm/mount.sock"]);
  // No device: the node hands over the /dev/fuse fd. Only emptyDirs.
  for (const v of spec.volumes ?? []) assert.deepEqual(Object.keys(v).sort(), ["emptyDir", "name"]);
  assert.equal(c.volumeMounts?.find((m) => m.name === "comm")?.mountPath, "/comm");
});

Deno.test("mountpoint pod: driver defaults, and --max-memory below the memory limit", () => {
  const c = mountpointPod(ID, pv("pv", "vol"), SETTINGS).spec!.containers[0];
  assert.deepEqual(c.resources, {
    requests: { cpu: "100m", memory: "256Mi" },
    limits: { memory: "1Gi" },
  });
  assert.deepEqual(c.args?.slice(3), ["--max-memory", String(maxMemoryMiB(2 ** 30))]);
  assert.equal(maxMemoryMiB(2 ** 30), 1024 - 384, "at least 384 MiB of headroom");
  assert.equal(maxMemoryMiB(4 * 2 ** 30), 4096 - 410, "a tenth of a large limit");
  assert.equal(maxMemoryMiB(100 * 2 ** 20), 64, "never below the mount's minimum");
});

Deno.test("mountpoint pod: volume attributes set resources; malformed ones fall back", () => {
  const warnings: string[] = [];
  const volume = pv("pv", "vol", {
    attrs: {
      mountpointContainerResourcesRequestsCpu: "250m",
      mountpointContainerResourcesRequestsMemory: "512Mi",
      mountpointContainerResourcesLimitsCpu: "2",
      mountpointContainerResourcesLimitsMemory: "lots",
    },
  });
  const c = mountpointPod(ID, volume, { ...SETTINGS, warn: (m) => warnings.push(m) })
    .spec!.containers[0];
  assert.deepEqual(c.resources, {
    requests: { cpu: "250m", memory: "512Mi" },
    limits: { cpu: "2", memory: "1Gi" },
  });
  assert.equal(warnings.length, 1);
  const noLimit = mountpointPod(ID, pv("pv", "vol"), {
    ...SETTINGS,
    resources: { ...DEFAULT_RESOURCES, limitsMemory: "" },
  }).spec!.containers[0];
  assert.equal(noLimit.resources?.limits, undefined);
  assert.ok(!noLimit.args?.includes("--max-memory"));
});

Deno.test("mountpoint pod: cache: emptyDir adds a sized emptyDir and --cache", () => {
  const volume = pv("pv", "vol", { attrs: { cache: "emptyDir", cacheEmptyDirSizeLimit: "2Gi" } });
  const spec = mountpointPod(ID, volume, SETTINGS).spec!;
  assert.deepEqual(spec.volumes?.find((v) => v.name === "cache"), {
    name: "cache",
    emptyDir: { sizeLimit: "2Gi" },
  });
  const c = spec.containers[0];
  assert.equal(c.volumeMounts?.find((m) => m.name === "cache")?.mountPath, "/cache");
  assert.deepEqual(c.args?.slice(-2), ["--cache", "/cache"]);
  const without = mountpointPod(ID, pv("pv", "vol"), SETTINGS).spec!;
  assert.equal(without.volumes?.find((v) => v.name === "cache"), undefined);
});

Deno.test("quantityValue: reads the suffixes Kubernetes uses, refuses the rest", () => {
  assert.equal(quantityValue("1Gi"), 2 ** 30);
  assert.equal(quantityValue("500M"), 5e8);
  assert.equal(quantityValue("250m"), 0.25);
  assert.equal(quantityValue("1.5Gi"), 1.5 * 2 ** 30);
  assert.equal(quantityValue("12"), 12);
  for (const bad of ["", "lots", "1GB", "-1", "1 Gi"]) assert.equal(quantityValue(bad), undefined);
});
