/**
 * Test support shared by the integration tiers under `tests/`: the MinIO
 * harness, temporary credentials from its STS endpoint, and small helpers
 * (free ports, temporary directories, timeouts).
 *
 * @module
 */

export {
  listBucketNames,
  listUploads,
  minioBinary,
  minioClientConfig,
  minioEnv,
  startMinio,
} from "./minio.ts";
export type { MinioServer, StartMinioOptions } from "./minio.ts";
export { assumeRole } from "./sts.ts";
export {
  detachFuseMountsUnder,
  freePort,
  fuseMountsUnder,
  pids,
  randomHex,
  tempDir,
  withTimeout,
} from "./helpers.ts";
