/**
 * s3csi: one program for every role of the S3 CSI driver. The first argument
 * chooses the role; each role's module parses its own flags and returns an
 * exit code when it ends normally. What escapes a role gets its exit code
 * here, the one place that maps errors to exit codes (`EXIT`): a usage error
 * and a startup failure are one line on stderr, an unexpected error a log
 * entry.
 *
 * @module
 */
import { UsageError } from "./internal/cli/mod.ts";
import { StartupError, UnimplementedError } from "./internal/errors/mod.ts";
import { DRIVER_NAME, VERSION } from "./internal/version.ts";
import { log } from "./internal/log/mod.ts";
interface Role {
  summary: string;
  /** Loaded on use: a mount process then holds none of the gRPC and Kubernetes clients. */
  load(): Promise<{ main(args: string[]): Promise<number> }>;
}

const ROLES: Record<string, Role> = {
  controller: {
    summary: "Serve CSI Identity + Controller (dynamic provisioning)",
    load: () => import("./cmd/controller/mod.ts"),
  },
  node: {
    summary: "Serve CSI Identity + Node (mount volumes into pods)",
    load: () => import("./cmd/node/mod.ts"),
  },
  reconciler: {
    summary: "Keep Mountpoint Pods and their attachments for workloads",
    load: () => import("./cmd/reconciler/mod.ts"),
  },
  mount: {
    summary: "Mount an S3 bucket as a FUSE file system",
    load: () => import("./cmd/mount/mod.ts"),
  },
  doctor: {
    summary: "Check the node, S3 and the cluster before (or while) running the driver",
    load: () => import("./cmd/doctor/mod.ts"),
  },
};

/** Exit codes. */
export const EXIT = {
  ok: 0,
  /** A role could not start (`StartupError`), or failed unexpectedly. */
  failure: 1,
  /** Bad command line: unknown command or flag, malformed value. */
  usage: 2,
  /** The command exists but is not built yet. */
  unimplemented: 3,
} as const;

/** Reports what ended `cmd` and returns its exit code. */
function exitFor(cmd: string, err: unknown): number {
  if (err instanceof UsageError) {
    console.error(`s3csi ${cmd}: ${err.message}\nRun 's3csi ${cmd} --help' for usage.`);
    return EXIT.usage;
  }
  if (err instanceof UnimplementedError) {
    console.error(`s3csi ${cmd}: ${err.message}`);
    return EXIT.unimplemented;
  }
  if (err instanceof StartupError) {
    console.error(`s3csi ${cmd}: ${err.message}`);
    return EXIT.failure;
  }
  log.error("fatal error", { role: cmd, error: err });
  return EXIT.failure;
}

function topUsage(): string {
  const lines = [
    `s3csi ${VERSION}: CSI driver for S3 (${DRIVER_NAME})`,
    "",
    "Usage: s3csi <command> [options]",
    "",
    "Commands:",
  ];
  for (const [name, role] of Object.entries(ROLES)) {
    lines.push(`  ${name.padEnd(12)} ${role.summary}`);
  }
  lines.push(`  ${"version".padEnd(12)} Print the version`);
  lines.push("", "Run 's3csi <command> --help' for the options of a command.");
  return lines.join("\n");
}

export async function run(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    console.log(topUsage());
    return cmd === undefined ? EXIT.usage : EXIT.ok;
  }
  if (cmd === "version" || cmd === "--version") {
    console.log(`s3csi ${VERSION} (${DRIVER_NAME})`);
    return EXIT.ok;
  }
  const role = ROLES[cmd];
  if (!role) {
    console.error(`s3csi: unknown command "${cmd}"\n\n${topUsage()}`);
    return EXIT.usage;
  }
  try {
    return await (await role.load()).main(rest);
  } catch (err) {
    return exitFor(cmd, err);
  }
}

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
