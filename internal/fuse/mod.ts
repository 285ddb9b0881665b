/**
 * The FUSE protocol layer: mount a FUSE file system, serve it from a
 * `FileSystem` (internal/fs/api.ts), check and unmount it. Code outside this
 * folder imports it through this module.
 *
 * ```ts
 * const fd = await mountFuse({ target, fsname: "s3csi", subtype: "s3csi", allowOther: true });
 * await tuneReadahead(target, 1024);
 * const session = new FuseSession(fd, fs, { allowRoot: false });
 * await session.run(); // resolves once `target` is unmounted
 * ```
 *
 * Inside: mount.ts (mount(2), health, readahead), session.ts (the session,
 * which puts together channel.ts, init.ts and dispatch.ts), and the codec:
 * abi.ts and structs.ts (the kernel ABI as data), codec.ts (structs read and
 * written by their layout), request.ts and reply.ts.
 *
 * @module
 */

export { FuseSession, type SessionOptions } from "./session.ts";
export type { Negotiated, ReaddirplusMode } from "./init.ts";
export {
  checkMount,
  cloneFuseFd,
  mountFuse,
  type MountFuseOptions,
  type MountHealth,
  type MountInfoEntry,
  parseMountInfo,
  readMountInfo,
  serveFd,
  tuneReadahead,
  unmount,
  type UnmountOptions,
} from "./mount.ts";
