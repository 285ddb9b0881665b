/**
 * The FUSE protocol layer: mount a FUSE file system, serve it from a
 * `FileSystem` (internal/fs/api.ts), check and unmount it.
 *
 * ```ts
 * const fd = await mountFuse({ target, fsname: "s3csi", subtype: "s3csi", allowOther: true });
 * await tuneReadahead(target, 1024);
 * const session = new FuseSession(fd, fs, { allowRoot: false });
 * await session.run(); // resolves once `target` is unmounted
 * ```
 *
 * The codec (abi.ts, request.ts, reply.ts) is exported for tools and tests;
 * the session is the only code that needs it in production.
 *
 * @module
 */

export {
  FuseSession,
  type Negotiated,
  type ReaddirplusMode,
  type SessionOptions,
} from "./session.ts";
export {
  checkMount,
  findMount,
  isMountPoint,
  mountFuse,
  type MountFuseOptions,
  type MountHealth,
  type MountInfoEntry,
  readMountInfo,
  serveFd,
  tuneReadahead,
  unmount,
  type UnmountOptions,
} from "./mount.ts";
export { DecodeError, type DecodeErrorKind, decodeRequest, type Request } from "./request.ts";
export { FUSE_KERNEL_VERSION, FUSE_OUR_MINOR, OPCODES, opName, STRUCTS } from "./abi.ts";
