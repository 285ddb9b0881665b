/**
 * Test support shared by the integration tiers under `tests/`: the MinIO
 * harness and small helpers (free ports, temporary directories, timeouts).
 *
 * @module
 */

export { minioBinary, minioClientConfig, minioEnv, startMinio } from "./minio.ts";
export type { MinioServer, StartMinioOptions } from "./minio.ts";
export { freePort, randomHex, tempDir, withTimeout } from "./helpers.ts";
