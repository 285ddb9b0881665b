/**
 * `s3csi doctor`: preflight checks of a node, the S3 endpoint and the
 * cluster, each with one verdict (ok, warning, failed), a one-line reason
 * and what to do.
 *
 * - `check.ts`: the Check and Finding types, and the runner (dependencies,
 *   a deadline per check).
 * - `report.ts`: the table and the `--json` document.
 * - `local_checks.ts` (with `fuse_probe.ts`), `s3_checks.ts`,
 *   `cluster_checks.ts` (with `rbac.ts`): the checks, one file per group.
 *
 * `docs/troubleshooting.md` ("s3csi doctor") says what each check means and
 * what to do when it fails.
 *
 * @module
 */
export * from "./check.ts";
export * from "./report.ts";
export { localChecks, type LocalOptions } from "./local_checks.ts";
export { s3Checks, type S3Options } from "./s3_checks.ts";
export { clusterChecks, type ClusterOptions } from "./cluster_checks.ts";
export { DRIVER_RBAC } from "./rbac.ts";
