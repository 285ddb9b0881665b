/**
 * The read path of `s3csi mount`: per-handle prefetching readers over S3, the
 * global memory budget they share, the pool of part buffers, and the
 * optional local disk cache.
 *
 * The file system core creates one `MemoryBudget` and one `BufferPool` per
 * mount (and receives the mount's `DataCache`, if any), then one reader per
 * open file handle with `createReader()`, calls `read(offset, size)` for each
 * kernel READ, and `close()` on release.
 *
 * @module
 */

export { MemoryBudget } from "./memory_budget.ts";
export { allocate, BufferPool } from "./buffer_pool.ts";
export { createDataCache, type DataCache, type DataCacheOptions } from "./data_cache.ts";
export { createReader, type ReaderOptions } from "./reader.ts";
export type { ReadSource } from "./read_source.ts";
