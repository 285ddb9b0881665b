/**
 * The file system core of `s3csi mount`: Mountpoint-for-S3 semantics over an
 * `ObjectClient`, behind the `FileSystem` contract of `./api.ts`. The rules
 * it implements are written down in `./SEMANTICS.md`. This is what other
 * folders import: the contract, the S3 file system, its configuration, and
 * the disk data cache a mount builds once and hands to the file system.
 * The FUSE layer alone imports the contract straight from `./api.ts`, so
 * that the protocol code depends on nothing that speaks S3.
 *
 * @module
 */

export * from "./api.ts";
export { S3FileSystem, type S3FileSystemOptions } from "./s3_file_system.ts";
export type { UploadLedger } from "./upload.ts";
export { type FsConfig, type MetadataTtl, MIB } from "./config.ts";
export { createDataCache, type DataCache, type DataCacheOptions } from "./prefetch/mod.ts";
