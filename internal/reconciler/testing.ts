/**
 * Test fixtures for the reconciler's tests: the cluster objects a scenario
 * needs (nodes, PVs of this driver, claims, workload pods), written once.
 *
 * @module
 */
import type {
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
} from "@kubernetes/client-node";
import { DRIVER_NAME } from "../version.ts";
import { DEFAULT_RESOURCES } from "./mountpoint_pod.ts";
import type { ReconcilerConfig } from "./controller.ts";
import type { KubeApi } from "../kube/mod.ts";
import type { Clock } from "./clock.ts";
import { Logger } from "../log/mod.ts";

export function node(name: string): V1Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name } };
}

export function pv(
  name: string,
  volumeHandle: string,
  opts: { mountOptions?: string[]; attrs?: Record<string, string>; driver?: string } = {},
): V1PersistentVolume {
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name },
    spec: {
      mountOptions: opts.mountOptions,
      csi: {
        driver: opts.driver ?? DRIVER_NAME,
        volumeHandle,
        volumeAttributes: { bucketName: "b", ...opts.attrs },
      },
    },
  };
}

export function pvc(namespace: string, name: string, volumeName: string): V1PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name, namespace },
    spec: { volumeName },
  };
}

export function workload(
  name: string,
  claim: string,
  nodeName: string | undefined,
  opts: { namespace?: string; fsGroup?: number; phase?: string; uid?: string } = {},
): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: opts.namespace ?? "apps", uid: opts.uid ?? `uid-${name}` },
    spec: {
      nodeName,
      securityContext: opts.fsGroup === undefined ? {} : { fsGroup: opts.fsGroup },
      containers: [{ name: "app", image: "busybox" }],
      volumes: [{ name: "data", persistentVolumeClaim: { claimName: claim } }],
    },
    status: { phase: opts.phase ?? "Running" },
  };
}

/** A quiet logger for tests. */
export const quietLog = new Logger({ test: true });

/** Pod name suffixes: unique across reconciler instances, as random ones would be. */
let suffixes = 0;

/** Reconciler settings for tests: short, fake-clock periods. */
export function testConfig(api: KubeApi, clock: Clock, version = "1.0.0"): ReconcilerConfig {
  return {
    api,
    clock,
    log: quietLog,
    version,
    image: "s3csi:test",
    priorityClassName: "s3csi-mountpoint",
    resources: DEFAULT_RESOURCES,
    resyncMs: 60_000,
    sweepMs: 30_000,
    expectationsTtlMs: 300_000,
    backoff: { baseMs: 100, maxMs: 10_000 },
    workers: 2,
    randomSuffix: () => `r${suffixes++}`,
  };
}
