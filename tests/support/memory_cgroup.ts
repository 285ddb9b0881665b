/**
 * A memory cgroup of its own for a test process, on cgroup v1 (this
 * machine's kind: /sys/fs/cgroup/memory) or v2 (a unified hierarchy with
 * the memory controller). A process that joins it has all its memory
 * charged there and is OOM-killed by the kernel past the limit, as in a
 * container with a memory limit.
 *
 * @module
 */
import { randomHex } from "./helpers.ts";

const V1 = "/sys/fs/cgroup/memory";
const V2 = "/sys/fs/cgroup";

export interface MemoryCgroup {
  /** Write a pid here to move that process into the cgroup. */
  procs: string;
  /** Highest memory use charged so far (bytes). */
  peak(): number;
  /** OOM kills inside the cgroup so far. */
  oomKills(): number;
  /** Removes the cgroup; its processes must have exited. */
  remove(): Promise<void>;
}

function read(path: string): string {
  return Deno.readTextFileSync(path).trim();
}

function field(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** Where a memory cgroup can be made here, or null (no memory controller mounted). */
export function memoryCgroupKind(): "v1" | "v2" | null {
  if (isDir(V1)) return "v1";
  try {
    // A child of the root has memory.max only if the root hands the controller down.
    if (read(`${V2}/cgroup.subtree_control`).split(" ").includes("memory")) return "v2";
  } catch {
    // No unified hierarchy at /sys/fs/cgroup.
  }
  return null;
}

/** A new cgroup limited to `limitBytes` of memory (no swap to escape to). */
export async function memoryCgroup(limitBytes: number): Promise<MemoryCgroup> {
  const kind = memoryCgroupKind();
  if (!kind) throw new Error("no memory cgroup controller is mounted");
  const dir = `${kind === "v1" ? V1 : V2}/s3csi-test-${randomHex(6)}`;
  await Deno.mkdir(dir);
  if (kind === "v1") {
    await Deno.writeTextFile(`${dir}/memory.limit_in_bytes`, String(limitBytes));
    // Without this the limit would cover memory+swap separately; the machines have no swap anyway.
    await Deno.writeTextFile(`${dir}/memory.swappiness`, "0").catch(() => {});
  } else {
    await Deno.writeTextFile(`${dir}/memory.max`, String(limitBytes));
    await Deno.writeTextFile(`${dir}/memory.swap.max`, "0").catch(() => {});
  }
  return {
    procs: `${dir}/cgroup.procs`,
    peak: () =>
      Number(read(`${dir}/${kind === "v1" ? "memory.max_usage_in_bytes" : "memory.peak"}`)),
    oomKills: () =>
      field(read(`${dir}/${kind === "v1" ? "memory.oom_control" : "memory.events"}`), "oom_kill"),
    async remove() {
      for (let i = 0; i < 50; i++) {
        try {
          await Deno.remove(dir);
          return;
        } catch {
          // The last process may still be exiting.
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await Deno.remove(dir);
    },
  };
}
