import assert from "node:assert/strict";
import { findMount, mountsOfDevice, parseMountInfo } from "./mount_table.ts";

// Two lines as the kernel writes them: a FUSE source mount and its bind
// mount at a kubelet target whose path contains a space (escaped as \040).
const SAMPLE = [
  "36 25 0:45 / /var/lib/kubelet/plugins/s3.csi.scality.com/mnt/abc rw,nosuid,nodev,relatime - fuse.s3csi s3csi rw,user_id=0,group_id=0",
  "40 30 0:45 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pv\\040a/mount rw,relatime - fuse.s3csi s3csi rw,user_id=0,group_id=0",
  "41 30 8:1 / /other rw - ext4 /dev/sda1 rw",
].join("\n");

Deno.test("parseMountInfo() reads devices, unescapes paths and fs types", () => {
  const t = parseMountInfo(SAMPLE);
  assert.equal(t.length, 3);
  assert.equal(t[1].mountPoint, "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pv a/mount");
  assert.equal(t[1].device, "0:45");
  assert.equal(t[0].fsType, "fuse.s3csi");
  assert.equal(t[2].source, "/dev/sda1");
});

Deno.test("mountsOfDevice() lists the targets that share a source mount", () => {
  const t = parseMountInfo(SAMPLE);
  const src = findMount(t, "/var/lib/kubelet/plugins/s3.csi.scality.com/mnt/abc")!;
  assert.deepEqual(mountsOfDevice(t, src.device, src.mountPoint), [
    "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pv a/mount",
  ]);
  assert.equal(findMount(t, "/nowhere"), undefined);
});
