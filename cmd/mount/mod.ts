/**
 * `s3csi mount <bucket> <mountpoint|/dev/fd/N> [options]`: the FUSE file
 * system over S3, also for local debugging. Its options are the table in
 * internal/mount/options.ts (names follow mount-s3's).
 *
 * `s3csi mount --from-socket <path>`: the program of a Mountpoint Pod; the
 * bucket, the options and the mounted /dev/fuse fd arrive over the socket
 * (internal/podmount/server.ts); the pod's own options (the `--max-memory`
 * and `--cache` the reconciler derives from its resources) win over the
 * request's.
 *
 * Wiring only: flags → MountConfig → internal/mount.
 *
 * @module
 */
import { logLevel, usage, UsageError } from "../../internal/cli/mod.ts";
import { mountConfig, parseMountArgs } from "../../internal/mount/config.ts";
import { MOUNT_OPTIONS } from "../../internal/mount/options.ts";
import { daemonize, runMount } from "../../internal/mount/run.ts";
import { serveFromSocket } from "../../internal/podmount/server.ts";

const SYNOPSIS = "s3csi mount <bucket> <mountpoint|/dev/fd/N> [options]\n" +
  "       s3csi mount --from-socket <path> [--accept-timeout <seconds>]";

/** The options of a Mountpoint Pod's own command line that apply to its mount (all but the socket's). */
function podArgs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--from-socket" || a === "--accept-timeout") i++;
    else if (!a.startsWith("--from-socket=") && !a.startsWith("--accept-timeout=")) out.push(a);
  }
  return out;
}

export async function main(args: string[]): Promise<number> {
  const parsed = parseMountArgs(args);
  const { flags: o, positionals, values } = parsed;
  if (o.help) {
    console.log(usage(SYNOPSIS, MOUNT_OPTIONS));
    return 0;
  }
  if (o.fromSocket !== undefined) {
    if (positionals.length !== 0) {
      throw new UsageError(
        "--from-socket takes no bucket or mount point: they come over the socket",
      );
    }
    return await serveFromSocket({
      socketPath: o.fromSocket,
      logLevel: logLevel(values),
      acceptTimeoutS: o.acceptTimeout ?? 0,
      podArgs: podArgs(args),
    });
  }
  if (positionals.length !== 2) {
    throw new UsageError(
      `Expected a bucket and a mount point, got ${positionals.length} arguments`,
    );
  }
  const [bucket, mountPoint] = positionals;
  const cfg = mountConfig(parsed, bucket, mountPoint, {
    uid: Deno.uid() ?? 0,
    gid: Deno.gid() ?? 0,
  });
  if (!o.foreground) return await daemonize(args);
  return await runMount(cfg);
}
