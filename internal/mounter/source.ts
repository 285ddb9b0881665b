/**
 * What every Mounter does the same way to a source directory: the node's
 * own FUSE mount(2) of it (the node holds the privileges; whoever serves the
 * connection needs none), the `s3csi mount` arguments that describe the
 * mount to its server, raising its readahead, and taking it down.
 *
 * @module
 */
import type { S3Connection } from "../cli/mod.ts";
import { InternalError } from "../errors/mod.ts";
import { mountFuse, tuneReadahead, unmount } from "../fuse/mod.ts";
import type { Logger } from "../log/mod.ts";
import { SOURCE_OWNER } from "../podmount/contract.ts";
import { VERSION } from "../version.ts";
import { toMountArgs } from "./mount_options.ts";
import type { MountSpec } from "./mounter.ts";

/** Creates the mount's private state directory, readable by root only. */
export async function prepareStateDir(stateDir: string): Promise<void> {
  await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
  await Deno.chmod(stateDir, 0o700);
}

/**
 * Mounts FUSE on `spec.sourceDir` (created if needed) and returns the
 * /dev/fuse fd of the connection (O_NONBLOCK, close-on-exec). The kernel
 * queues INIT on it for whoever serves it.
 */
export async function mountSource(spec: MountSpec): Promise<number> {
  await Deno.mkdir(spec.sourceDir, { recursive: true, mode: 0o755 });
  const opts = spec.options;
  try {
    return await mountFuse({
      target: spec.sourceDir,
      fsname: "s3csi",
      subtype: "s3csi",
      uid: SOURCE_OWNER,
      gid: SOURCE_OWNER,
      allowOther: opts.allowOther || opts.allowRoot,
      readOnly: opts.readOnly,
      defaultPermissions: true,
    });
  } catch (err) {
    throw new InternalError(
      `Cannot mount FUSE on "${spec.sourceDir}": ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/**
 * The `s3csi mount` options of `spec` (what follows the bucket and the mount
 * point) on the driver's S3 connection, with the user agent that tells the
 * driver and the credential source apart in S3 logs.
 */
export function sourceMountArgs(spec: MountSpec, driver: S3Connection): string[] {
  const opts = spec.options;
  return toMountArgs({
    ...opts,
    userAgentPrefix: [
      `s3csi/${VERSION}`,
      `credential-source#${spec.authenticationSource}`,
      opts.userAgentPrefix,
    ].filter(Boolean).join(" "),
  }, driver);
}

/** Raises the source's readahead to 1 MiB requests; a failure only costs speed. */
export async function tuneSource(sourceDir: string, log: Logger): Promise<void> {
  await tuneReadahead(sourceDir, 1024).catch((err) =>
    log.warn("cannot raise readahead", { error: err })
  );
}

/** Unmounts a source; when busy (a late reader), detaches it and the kernel finishes later. */
export function detachSource(sourceDir: string): void {
  try {
    unmount(sourceDir);
  } catch {
    unmount(sourceDir, { lazy: true });
  }
}
