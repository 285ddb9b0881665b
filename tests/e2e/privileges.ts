/**
 * Privileges, seen from the host: what the driver's processes may do, read
 * from `/proc` rather than from the manifests that ask for it.
 * - the Mountpoint Pod's server runs as uid 1000 with no capabilities, no
 *   way to gain any, and no `/dev/fuse` in its file system (the node hands
 *   it the fd); its credentials file is 0600 and owned by that uid;
 * - no s3csi process listens on a TCP port that was not asked for: the
 *   node on its health and metrics ports, the controller and reconciler on
 *   their metrics ports (or the loopback port the chart asks for on the
 *   host network), a Mountpoint Pod on none.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CREDENTIALS_FILE } from "../../internal/podmount/contract.ts";
import { type E2e, MOUNT_NS, type Step } from "./harness.ts";
import type { SharedVolume } from "./workloads.ts";

const ROLES = ["node", "controller", "reconciler", "mount"] as const;
type Role = typeof ROLES[number];

/** The ports each role is asked to listen on by the chart's values the e2e tier installs. */
const ASKED: Record<Role, number[]> = {
  node: [9808, 9810],
  controller: [9811],
  reconciler: [9812],
  mount: [],
};

interface DriverProcess {
  pid: number;
  role: Role;
}

/** The s3csi processes on this host: the image runs `deno run … /usr/local/bin/s3csi <role>`. */
export async function driverProcesses(): Promise<DriverProcess[]> {
  const out: DriverProcess[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const args = (await Deno.readTextFile(`/proc/${entry.name}/cmdline`)).split("\0");
      const main = args.findIndex((a) => a.endsWith("/s3csi") || a.endsWith("/main.ts"));
      if (main < 0) continue;
      const role = ROLES.find((r) => r === args[main + 1]);
      if (role) out.push({ pid: Number(entry.name), role });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** "addr:port" of the TCP sockets `pid` holds in LISTEN state, read in its network namespace. */
export async function listeningSockets(pid: number): Promise<{ ip: string; port: number }[]> {
  const inodes = new Set<string>();
  for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
    const target = await Deno.readLink(`/proc/${pid}/fd/${fd.name}`).catch(() => "");
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]);
  }
  const out: { ip: string; port: number }[] = [];
  for (const table of ["tcp", "tcp6"]) {
    const text = await Deno.readTextFile(`/proc/${pid}/net/${table}`).catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
      if (f.length < 10 || f[3] !== "0A" || !inodes.has(f[9])) continue;
      const [hexIp, hexPort] = f[1].split(":");
      out.push({ ip: hexIp, port: parseInt(hexPort, 16) });
    }
  }
  return out;
}

/** IPv4 loopback in /proc/net/tcp's little-endian hex, and IPv6 ::1. */
const LOOPBACK = new Set(["0100007F", "00000000000000000000000001000000"]);

function statusField(status: string, name: string): string {
  return new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1].trim() ?? "";
}

export async function privileges(e: E2e, step: Step, vol: SharedVolume): Promise<void> {
  await step(
    "privileges: the Mountpoint Pod's server is uid 1000 with no capabilities and no /dev/fuse, its credentials file 0600 and its own",
    async () => {
      assert.ok(vol.pv, "the shared volume was provisioned");
      const mounts = (await driverProcesses()).filter((p) => p.role === "mount");
      assert.ok(mounts.length >= 1, "a Mountpoint Pod's server runs on this host");
      for (const { pid } of mounts) {
        const status = await Deno.readTextFile(`/proc/${pid}/status`);
        assert.equal(statusField(status, "Uid").split(/\s+/)[0], "1000", `pid ${pid} uid`);
        assert.equal(statusField(status, "Gid").split(/\s+/)[0], "1000", `pid ${pid} gid`);
        for (const cap of ["CapEff", "CapPrm", "CapBnd", "CapAmb"]) {
          assert.equal(statusField(status, cap), "0000000000000000", `pid ${pid} ${cap}`);
        }
        assert.equal(statusField(status, "NoNewPrivs"), "1", `pid ${pid} may not gain privileges`);
        const fuse = await Deno.stat(`/proc/${pid}/root/dev/fuse`).then(() => true, () => false);
        assert.equal(fuse, false, `pid ${pid} sees /dev/fuse`);
      }
      const kubelet = e.c.env.S3CSI_KUBELET_DIR;
      for (const pod of await e.mountpointPods()) {
        const uid = (await e.json(["-n", MOUNT_NS, "get", "pod", pod])).metadata.uid;
        const path =
          `${kubelet}/pods/${uid}/volumes/kubernetes.io~empty-dir/comm/${CREDENTIALS_FILE}`;
        const st = await Deno.stat(path);
        assert.equal(st.mode! & 0o777, 0o600, `${path} mode`);
        assert.equal(st.uid, 1000, `${path} is owned by the pod's user, who reads it`);
      }
    },
  );

  await step(
    "privileges: no s3csi process listens on a TCP port it was not asked for",
    async () => {
      const procs = await driverProcesses();
      const seen = new Set(procs.map((p) => p.role));
      for (const role of ["node", "controller", "reconciler", "mount"] as const) {
        assert.ok(seen.has(role), `an s3csi ${role} runs on this host`);
      }
      const found: string[] = [];
      for (const { pid, role } of procs) {
        for (const s of await listeningSockets(pid)) {
          found.push(`${role}:${s.port}`);
          // On the host network the chart asks for an ephemeral loopback port.
          const asked = ASKED[role].includes(s.port) || (role !== "mount" && LOOPBACK.has(s.ip));
          assert.ok(asked, `${role} (pid ${pid}) listens on port ${s.port} (${s.ip})`);
        }
      }
      console.log(`TCP listeners of the driver: ${[...new Set(found)].sort().join(", ")}`);
    },
  );
}
