/**
 * The file system core of `s3csi mount`: Mountpoint-for-S3 semantics over an
 * `ObjectClient`, behind the `FileSystem` interface of `./api.ts`. The rules
 * it implements are written down in `./SEMANTICS.md`.
 *
 * @module
 */

export { S3FileSystem } from "./s3_file_system.ts";
export {
  defaultFsConfig,
  type FsConfig,
  type MetadataTtl,
  MINIMAL_TTL_MS,
  ttlsOf,
  validateFsConfig,
} from "./config.ts";
export { errnoOf, toFsError } from "./errno.ts";
export type { ReadSource } from "./prefetch/mod.ts";
