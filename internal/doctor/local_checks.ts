/**
 * Checks of the node itself, as the node plugin sees it (run them on the
 * node, or in the node pod):
 *
 * - `local.fuse-device`: /dev/fuse opens read-write (the node opens it for
 *   every mount).
 * - `local.fuse-mount`: a FUSE mount works and answers (`fuse_probe.ts`);
 *   reports the protocol version negotiated with the kernel.
 * - `local.kubelet-dir`: the kubelet root directory exists.
 * - `local.propagation`: the mount holding the kubelet directory is a shared
 *   mount. The node mounts under it, and kubelet and the workload pods must
 *   see those mounts: only a shared mount propagates them back (a private or
 *   a slave mount, which is what `HostToContainer` gives, does not).
 * - `local.plugin-dirs`: the driver's plugin directory (its CSI socket) and
 *   the kubelet's plugins_registry (the registration socket) are writable.
 *
 * @module
 */
import { DRIVER_NAME } from "../version.ts";
import { parseMountInfo } from "../fuse/mod.ts";
import type { MountInfoEntry } from "../fuse/mod.ts";
import { E, SysError } from "../sys/libc.ts";
import { errorMessage } from "../errors/mod.ts";
import { type Check, failed, type Finding, ok, warning } from "./check.ts";
import { probeFuseMount } from "./fuse_probe.ts";

export interface LocalOptions {
  kubeletDir: string;
  /** Default /dev/fuse; the tests point it elsewhere. */
  fuseDevice?: string;
  /** The mount table, default /proc/self/mountinfo (the tests give their own). */
  mountInfo?: () => Promise<string>;
}

export function localChecks(o: LocalOptions): Check[] {
  const device = o.fuseDevice ?? "/dev/fuse";
  const kubelet = o.kubeletDir.replace(/\/+$/, "") || "/";
  const mountInfo = o.mountInfo ?? (() => Deno.readTextFile("/proc/self/mountinfo"));
  return [
    {
      id: "local.fuse-device",
      group: "local",
      title: `${device} opens`,
      run: () => fuseDevice(device),
    },
    {
      id: "local.fuse-mount",
      group: "local",
      title: "A FUSE mount works",
      needs: ["local.fuse-device"],
      run: ({ signal }) => fuseMount(signal),
    },
    {
      id: "local.kubelet-dir",
      group: "local",
      title: "The kubelet directory exists",
      run: () => kubeletDir(kubelet),
    },
    {
      id: "local.propagation",
      group: "local",
      title: "The kubelet directory is on a shared mount",
      needs: ["local.kubelet-dir"],
      run: async () => propagation(await Deno.realPath(kubelet), parseMountInfo(await mountInfo())),
    },
    {
      id: "local.plugin-dirs",
      group: "local",
      title: "The plugin directories are writable",
      needs: ["local.kubelet-dir"],
      run: () => pluginDirs(kubelet),
    },
  ];
}

async function fuseDevice(path: string): Promise<Finding> {
  try {
    const f = await Deno.open(path, { read: true, write: true });
    f.close();
    return ok(`${path} opens read-write`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return failed(
        `${path} does not exist`,
        "Load the fuse module (modprobe fuse); in a container, mount the host's /dev/fuse",
      );
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      return failed(
        `Cannot open ${path}: permission denied`,
        "Run as root, or in the privileged node pod",
      );
    }
    return failed(`Cannot open ${path}: ${errorMessage(err)}`, "Check that it is the FUSE device");
  }
}

async function fuseMount(signal: AbortSignal): Promise<Finding> {
  try {
    const r = await probeFuseMount(signal);
    const newer = r.kernelProtocol !== r.protocol ? ` (kernel offers ${r.kernelProtocol})` : "";
    return ok(`FUSE ${r.protocol}${newer}: mounted, answered and unmounted`, { ...r });
  } catch (err) {
    if (err instanceof SysError && (err.errno === E.EPERM || err.errno === E.EACCES)) {
      return failed(
        "mount(2) of a FUSE file system was refused: it needs CAP_SYS_ADMIN",
        "Run as root, or in the node pod (privileged)",
      );
    }
    if (err instanceof SysError && err.errno === E.ENODEV) {
      return failed(
        "The kernel has no FUSE file system type",
        "Load the fuse module (modprobe fuse)",
      );
    }
    return failed(`FUSE mount failed: ${errorMessage(err)}`, "Check dmesg for FUSE errors");
  }
}

async function kubeletDir(dir: string): Promise<Finding> {
  try {
    const st = await Deno.stat(dir);
    if (!st.isDirectory) {
      return failed(`${dir} is not a directory`, "Give --kubelet-dir the kubelet's --root-dir");
    }
    return ok(`${dir} exists`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return failed(
        `${dir} does not exist`,
        "Run the doctor on a node, or give --kubelet-dir the kubelet's --root-dir",
      );
    }
    return failed(`Cannot stat ${dir}: ${errorMessage(err)}`, "Run as root");
  }
}

/** The mount `path` lives on: the longest mount point containing it, the top-most if stacked. */
export function mountOf(
  path: string,
  mounts: readonly MountInfoEntry[],
): MountInfoEntry | undefined {
  let best: MountInfoEntry | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const contains = mp === "/" || path === mp || path.startsWith(`${mp}/`);
    if (contains && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/** Exported for its unit test. */
export function propagation(path: string, mounts: readonly MountInfoEntry[]): Finding {
  const m = mountOf(path, mounts);
  if (!m) return failed(`No mount holds ${path}`, "Check /proc/self/mountinfo");
  const where = m.mountPoint === path ? path : `${m.mountPoint} (holding ${path})`;
  const shared = m.optional.find((f) => f.startsWith("shared:"));
  const detail = { mountPoint: m.mountPoint, propagation: m.optional };
  if (shared) return ok(`${where} is a shared mount (${shared})`, detail);
  const fix = `On the host: mount --make-rshared ${m.mountPoint} (check systemd's MountFlags); ` +
    "in the node pod, mount the kubelet dir with mountPropagation: Bidirectional";
  if (m.optional.some((f) => f.startsWith("master:"))) {
    return failed(
      `${where} is a slave mount: mounts made here do not reach the kubelet and pods`,
      fix,
      detail,
    );
  }
  return failed(
    `${where} is a private mount: mounts made here do not reach the kubelet and pods`,
    fix,
    detail,
  );
}

async function pluginDirs(kubelet: string): Promise<Finding> {
  const plugin = `${kubelet}/plugins/${DRIVER_NAME}`;
  const registry = `${kubelet}/plugins_registry`;
  const problems: Finding[] = [];
  for (
    const [dir, missing] of [
      // The node pod creates its own directory (hostPath DirectoryOrCreate).
      [plugin, "warning"],
      // kubelet creates it when it starts; missing means no kubelet here, or another root dir.
      [registry, "failed"],
    ] as const
  ) {
    const problem = await writable(dir, missing);
    if (problem) problems.push(problem);
  }
  const worst = problems.find((p) => p.verdict === "failed") ?? problems[0];
  if (!worst) return ok(`${plugin} and ${registry} are writable`);
  return { ...worst, reason: problems.map((p) => p.reason).join("; ") };
}

/** Creates and removes a file in `dir`; undefined when that works. */
async function writable(
  dir: string,
  ifMissing: "warning" | "failed",
): Promise<Finding | undefined> {
  const probe = `${dir}/.s3csi-doctor-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(probe, "", { createNew: true, mode: 0o600 });
    await Deno.remove(probe);
    return undefined;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      const reason = `${dir} does not exist`;
      return ifMissing === "warning"
        ? warning(
          reason,
          "The node pod creates it when it starts; if it does not, check its hostPath",
        )
        : failed(reason, "Start the kubelet, or give --kubelet-dir the kubelet's --root-dir");
    }
    return failed(
      `${dir} is not writable: ${errorMessage(err)}`,
      "Run as root; check that the directory is not on a read-only mount",
    );
  }
}
