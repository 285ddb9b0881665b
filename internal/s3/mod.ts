/**
 * The S3 package entry: the `ObjectClient` contract, the AWS SDK
 * implementation used in production, the in-memory double for tests, and
 * `createObjectClient()`, the one place the rest of s3csi turns an
 * `S3ClientConfig` into a client.
 *
 * @module
 */

export * from "./object_client.ts";
export {
  AwsObjectClient,
  type AwsObjectClientOptions,
  createAwsObjectClient,
  toS3Error,
} from "./aws_object_client.ts";
export {
  MemoryObjectClient,
  type MemoryObjectClientOptions,
  type MemoryOp,
} from "./memory_object_client.ts";

import { AwsObjectClient } from "./aws_object_client.ts";
import type { S3ClientConfig } from "./object_client.ts";

/** Builds the production client for `config`; call `close()` on it when done. */
export function createObjectClient(config: S3ClientConfig): AwsObjectClient {
  return new AwsObjectClient(config);
}
