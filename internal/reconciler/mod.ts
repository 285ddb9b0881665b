/**
 * `s3csi reconciler`'s logic: it keeps, for every workload pod using a
 * volume of this driver, a `MountpointS3PodAttachment` and a Mountpoint Pod
 * on the workload's node (the contract with the node and the pod is
 * `internal/podmount/contract.ts`).
 *
 * - `plan.ts`: the pure core, state in → writes out, per node and volume;
 *   `sharing_key.ts` says which workloads share a pod, `mountpoint_pod.ts`
 *   what the pod looks like.
 * - `controller.ts`: the runtime around it: `informer.ts` caches,
 *   `work_queue.ts`, `expectations.ts` for the caches' lag, the sweep.
 * - `leader.ts`: Lease leader election, so that replicas take turns.
 * - `clock.ts`: time, faked in tests.
 *
 * @module
 */
export { Reconciler, type ReconcilerConfig } from "./controller.ts";
export { type LeaderConfig, LeaderElector, leaderIdentity } from "./leader.ts";
export { DEFAULT_RESOURCES, type ResourceDefaults } from "./mountpoint_pod.ts";
export { quantityValue } from "./quantity.ts";
export { type Clock, realClock } from "./clock.ts";
