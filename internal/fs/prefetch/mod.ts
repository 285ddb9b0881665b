/**
 * The read path of `s3csi mount`: per-handle prefetching readers over S3, the
 * global memory budget they share, and the optional local disk cache.
 *
 * The file system core creates one `MemoryBudget` (and, with `--cache`, one
 * `DataCache`) per mount, then one reader per open file handle with
 * `createReader()`, calls `read(offset, size)` for each kernel READ, and
 * `close()` on release.
 *
 * @module
 */

export { MemoryBudget, type MemoryBudgetStats } from "./memory_budget.ts";
export { BufferPool, type BufferPoolStats } from "./buffer_pool.ts";
export {
  type CachedObjectId,
  createDataCache,
  type DataCache,
  type DataCacheOptions,
  type DataCacheStats,
} from "./data_cache.ts";
export {
  createReader,
  PrefetchReader,
  type ReaderOptions,
  type ReaderStats,
  type ReadSource,
} from "./reader.ts";
