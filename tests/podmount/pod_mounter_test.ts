/**
 * The `pod` Mounter with a real Mountpoint Pod process (`s3csi mount
 * --from-socket`, unprivileged when the tests run as root), the real kernel
 * FUSE and a real MinIO; only the Kubernetes lookup is a fake.
 */
import assert from "node:assert/strict";
import { findMount } from "../../internal/fuse/mount.ts";
import { toGrpcError } from "../../internal/csi/grpc_status.ts";
import { status as Status } from "@grpc/grpc-js";
import {
  ERROR_FILE,
  parseMountReply,
  READY_FILE,
  SOCKET_NAME,
} from "../../internal/podmount/contract.ts";
import { connectMountpoint } from "../../internal/podmount/handoff.ts";
import { receiveLine, sendLine } from "../../internal/podmount/wire.ts";
import { close, O_RDONLY, open } from "../../internal/sys/libc.ts";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { minioClientConfig, startMinio, withTimeout } from "../support/mod.ts";
import { POD_UID, withMinio, withWorld } from "./harness.ts";
import { fuseMountsUnder } from "../support/mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** `cat` in a child process, so a request the kernel holds never blocks this test's loop. */
async function catFile(path: string): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "piped" })
    .output();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** Polls `check` until it returns true; fails naming `what` after `ms`. */
async function eventually(what: string, ms: number, check: () => Promise<boolean>) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function procStatus(pid: number): Promise<Record<string, string>> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  return Object.fromEntries(
    text.split("\n").filter(Boolean).map((l) => {
      const i = l.indexOf(":");
      return [l.slice(0, i), l.slice(i + 1).trim()];
    }),
  );
}

Deno.test("the pod mounter mounts through a Mountpoint Pod: writes reach S3, reads come back, unmount ends the pod", async () => {
  await withMinio(async (minio, s3) => {
    await s3.createBucket("pod-bucket");
    await withWorld(minio, async (w) => {
      const pod = await w.startPod();
      const spec = w.spec({ bucket: "pod-bucket" });
      await w.mounter.ensureMounted(spec);
      assert.deepEqual(w.queries.at(-1), {
        nodeName: "node-1",
        volumeId: "vol-1",
        workloadPodUid: "workload-1",
      });
      assert.ok(await findMount(spec.sourceDir), "the source is mounted");
      assert.match(await Deno.readTextFile(`${pod.commDir}/${READY_FILE}`), /pod-bucket/);
      if (Deno.uid() === 0) {
        const st = await procStatus(pod.pid);
        assert.equal(st.Uid.split(/\s+/)[0], String(POD_UID), "the server runs unprivileged");
        assert.equal(st.CapEff, "0000000000000000", "with no capabilities");
      }
      const data = enc.encode("hello from a Mountpoint Pod\n".repeat(1000));
      await Deno.writeFile(`${spec.sourceDir}/hello.txt`, data);
      const obj = await s3.getObject("pod-bucket", "hello.txt");
      assert.deepEqual(obj.body, data, "the object in S3 has the bytes written");
      await s3.putObject("pod-bucket", "from-s3.txt", enc.encode("made in S3"));
      assert.equal((await catFile(`${spec.sourceDir}/from-s3.txt`)).out, "made in S3");
      assert.deepEqual(await Deno.readFile(`${spec.sourceDir}/hello.txt`), data);

      // Publishing again onto a healthy source keeps the mount (no second lookup needed).
      const asked = w.queries.length;
      await w.mounter.ensureMounted(spec);
      assert.equal(w.queries.length, asked, "a healthy source is not looked up again");

      await w.mounter.unmount(spec.sourceDir, spec.stateDir);
      assert.equal(await withTimeout(pod.status, 30_000, "Mountpoint Pod exit"), 0);
      assert.deepEqual(await fuseMountsUnder(w.kubelet), []);
      assert.ok(!pod.output().includes(minio.secretAccessKey), "no secret in the pod's logs");
    });
  });
});

Deno.test("a bucket that does not exist fails with the Mountpoint Pod's own line and leaves nothing mounted", async () => {
  await withMinio(async (minio) => {
    await withWorld(minio, async (w) => {
      const pod = await w.startPod();
      const spec = w.spec({ bucket: "no-such-bucket" });
      await assert.rejects(w.mounter.ensureMounted(spec), (err: Error) => {
        assert.equal(toGrpcError(err).code, Status.FAILED_PRECONDITION);
        assert.match(
          err.message,
          /^Cannot mount bucket "no-such-bucket" for volume "vol-1": Bucket "no-such-bucket" does not exist at http:\/\/127\.0\.0\.1:\d+$/,
        );
        return true;
      });
      const line = (await Deno.readTextFile(`${pod.commDir}/${ERROR_FILE}`)).trim();
      assert.match(line, /^Bucket "no-such-bucket" does not exist/);
      assert.equal(await findMount(spec.sourceDir), undefined, "nothing mounted");
      assert.deepEqual(await fuseMountsUnder(w.kubelet), []);
      assert.equal(await withTimeout(pod.status, 30_000, "Mountpoint Pod exit"), 1);
    });
  });
});

Deno.test("rotated credentials reach the running Mountpoint Pod without a remount", async () => {
  await withMinio(async (minio, s3) => {
    await s3.createBucket("rot-bucket");
    for (let i = 0; i < 40; i++) {
      await s3.putObject("rot-bucket", `f${i}.txt`, enc.encode(`file ${i}`));
    }
    await withWorld(minio, async (w) => {
      await w.startPod();
      const spec = w.spec({ bucket: "rot-bucket" });
      await w.mounter.ensureMounted(spec);
      assert.equal((await catFile(`${spec.sourceDir}/f0.txt`)).out, "file 0");
      const mounted = await fuseMountsUnder(w.kubelet);
      let next = 1;
      // Credentials S3 rejects: new lookups of the running mount fail once it has re-read the file.
      await w.mounter.ensureMounted({
        ...spec,
        credentials: { accessKeyId: "revokedkey", secretAccessKey: "revoked-secret-value-1" },
      });
      assert.deepEqual(await fuseMountsUnder(w.kubelet), mounted, "the same mount");
      await eventually("the revoked credentials are used", 15_000, async () => {
        return (await catFile(`${spec.sourceDir}/f${next++}.txt`)).code !== 0;
      });
      // Back to valid values: the same mount works again.
      await w.mounter.ensureMounted(spec);
      await eventually("the valid credentials are used again", 15_000, async () => {
        const r = await catFile(`${spec.sourceDir}/f${next}.txt`);
        return r.code === 0 && r.out === `file ${next++}`;
      });
      assert.deepEqual(await fuseMountsUnder(w.kubelet), mounted, "still the same mount");
      await w.mounter.unmount(spec.sourceDir, spec.stateDir);
    });
  });
});

Deno.test("an attachment that never comes is UNAVAILABLE, naming what was waited for", async () => {
  await withMinio(async (minio) => {
    await withWorld(minio, async (w) => {
      const spec = w.spec({});
      await assert.rejects(w.mounter.ensureMounted(spec), (err: Error) => {
        assert.equal(toGrpcError(err).code, Status.UNAVAILABLE);
        assert.match(
          err.message,
          /timed out after \d+ s waiting for a MountpointS3PodAttachment on node "node-1" that lists pod "workload-1"/,
        );
        return true;
      });
      assert.ok(w.queries.length > 1, "the lookup was polled");
      assert.deepEqual(await fuseMountsUnder(w.kubelet), []);
    }, { attachTimeoutMs: 600 });
  });
});

Deno.test("a Mountpoint Pod killed while the node holds the keeper fd leaves a waiting mount, not ENOTCONN, and the next pod answers the waiting call", async () => {
  await withMinio(async (minio, s3) => {
    await s3.createBucket("kill-bucket");
    await s3.putObject("kill-bucket", "a.txt", enc.encode("a"));
    await withWorld(minio, async (w) => {
      const pod = await w.startPod();
      const spec = w.spec({ bucket: "kill-bucket" });
      await w.mounter.ensureMounted(spec);
      assert.equal((await catFile(`${spec.sourceDir}/a.txt`)).out, "a");
      pod.kill("SIGKILL");
      await withTimeout(pod.status, 10_000, "Mountpoint Pod exit");
      assert.ok(await findMount(spec.sourceDir), "still mounted");
      // A new lookup has no server to answer it: the kernel holds it (the connection is alive).
      const stat = new Deno.Command("stat", {
        args: [`${spec.sourceDir}/never-looked-up.txt`],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let ended = false;
      const result = stat.output().then((r) => {
        ended = true;
        return r;
      });
      await eventually("the stat waits in the kernel for a FUSE answer", 10_000, async () => {
        const wchan = await Deno.readTextFile(`/proc/${stat.pid}/wchan`).catch(() => "");
        return ended || /fuse|request_wait_answer/.test(wchan);
      });
      if (ended) assert.fail(`the stat did not wait: ${dec.decode((await result).stderr)}`);
      // The pod the lookup names next (a new UID) is handed the live connection, unasked.
      const next = await w.startPod();
      const r = await withTimeout(result, 30_000, "the waiting stat ends");
      assert.notEqual(r.code, 0);
      assert.match(dec.decode(r.stderr), /No such file or directory/, "a real answer");
      assert.equal((await catFile(`${spec.sourceDir}/a.txt`)).out, "a", "served by the new pod");
      assert.equal((await fuseMountsUnder(w.kubelet)).length, 1, "the same mount, no second");
      await w.mounter.unmount(spec.sourceDir, spec.stateDir);
      assert.equal(await withTimeout(next.status, 30_000, "new Mountpoint Pod exit"), 0);
      assert.deepEqual(await fuseMountsUnder(w.kubelet), []);
    });
  });
});

Deno.test("a live mount whose Mountpoint Pod gets no successor in time is given up: the next publish mounts it again", async () => {
  await withMinio(async (minio, s3) => {
    await s3.createBucket("gone-bucket");
    await s3.putObject("gone-bucket", "a.txt", enc.encode("a"));
    await withWorld(minio, async (w) => {
      const pod = await w.startPod();
      const spec = w.spec({ bucket: "gone-bucket" });
      await w.mounter.ensureMounted(spec);
      w.attached = undefined; // the reconciler has no pod for it any more
      pod.kill("SIGKILL");
      await withTimeout(pod.status, 10_000, "Mountpoint Pod exit");
      await eventually("the keeper is let go: the source is dead", 10_000, async () => {
        return (await catFile(`${spec.sourceDir}/a.txt`)).code !== 0;
      });
      const next = await w.startPod();
      await w.mounter.ensureMounted(spec);
      assert.equal((await catFile(`${spec.sourceDir}/a.txt`)).out, "a", "mounted again");
      assert.equal((await fuseMountsUnder(w.kubelet)).length, 1);
      await w.mounter.unmount(spec.sourceDir, spec.stateDir);
      assert.equal(await withTimeout(next.status, 30_000, "new Mountpoint Pod exit"), 0);
    }, { recoverTimeoutMs: 1_000 });
  });
});

Deno.test("a Mountpoint Pod refuses a request of a version it does not speak, in its error file and reply", async () => {
  await withMinio(async (minio) => {
    await withWorld(minio, async (w) => {
      const pod = await w.startPod();
      const { sock } = await connectMountpoint(pod.commDir, Date.now() + 30_000);
      const devNull = open("/dev/null", O_RDONLY);
      try {
        const request = { version: 2, bucket: "b", args: [], authenticationSource: "driver" };
        await sendLine(sock, request, Date.now() + 5_000, devNull);
        const { line } = await receiveLine(sock, Date.now() + 30_000, "the reply");
        const reply = parseMountReply(line);
        assert.deepEqual(reply, {
          ok: false,
          error: "Unsupported mount request version 2: this Mountpoint Pod speaks version 1",
        });
        assert.equal(
          (await Deno.readTextFile(`${pod.commDir}/${ERROR_FILE}`)).trim(),
          reply.ok ? "" : reply.error,
        );
        assert.equal(await withTimeout(pod.status, 30_000, "Mountpoint Pod exit"), 1);
      } finally {
        close(devNull);
        close(sock);
      }
    });
  });
});

Deno.test("a Mountpoint Pod no node connects to within its accept timeout exits 0 and leaves no socket or error file", async () => {
  await withMinio(async (minio) => {
    await withWorld(minio, async (w) => {
      const pod = await w.startPod({}, ["--accept-timeout", "1"]);
      // Deno's start-up is not the pod's to count: its own log lines time the wait.
      assert.equal(await withTimeout(pod.status, 60_000, "Mountpoint Pod exit"), 0, pod.output());
      const lines = pod.output().split("\n").filter((l) => l.startsWith("{")).map((l) =>
        JSON.parse(l)
      );
      const socket = `${pod.commDir}/${SOCKET_NAME}`;
      const waiting = lines.find((l) => l.msg === "waiting for the node");
      const exit = lines.filter((l) => /^no mount request/.test(l.msg));
      assert.deepEqual(
        exit.map((l) => [l.level, l.msg, l.socket]),
        [["info", "no mount request within 1s: exiting", socket]],
      );
      const waited = Date.parse(exit[0].time) - Date.parse(waiting?.time);
      assert.ok(waited >= 1_000 && waited < 5_000, `waited ${waited} ms`);
      assert.ok(!lines.some((l) => l.level === "error"), pod.output());
      const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
      assert.ok(!(await exists(socket)), "no socket left behind");
      assert.ok(!(await exists(`${pod.commDir}/${ERROR_FILE}`)), "no error file");
      assert.ok(!(await exists(`${pod.commDir}/${READY_FILE}`)), "no ready file");
    });
  });
});

Deno.test("driver credentials the node holds reach a Mountpoint Pod that has none of its own", async () => {
  await withMinio(async (minio, s3) => {
    await s3.createBucket("drv-bucket");
    await s3.putObject("drv-bucket", "d.txt", enc.encode("driver"));
    await withWorld(minio, async (w) => {
      await w.startPod();
      const spec = w.spec({ bucket: "drv-bucket", authenticationSource: "driver" });
      await w.mounter.ensureMounted(spec);
      assert.equal((await catFile(`${spec.sourceDir}/d.txt`)).out, "driver");
      await w.mounter.unmount(spec.sourceDir, spec.stateDir);
    });
  });
});

Deno.test("a Mountpoint Pod's own --max-memory and --cache win over the request's options", async () => {
  await withMinio(async (minio, s3) => {
    await s3.createBucket("own-bucket");
    const cache = await Deno.makeTempDir({ prefix: "s3csi-pod-cache-" });
    await Deno.chmod(cache, 0o777);
    try {
      await withWorld(minio, async (w) => {
        const pod = await w.startPod({}, ["--max-memory", "100", "--cache", cache]);
        const spec = w.spec({ bucket: "own-bucket" });
        await w.mounter.ensureMounted(spec);
        const requested = pod.output().split("\n").filter((l) => l.includes('"mount requested"'))
          .map((l) => JSON.parse(l));
        assert.equal(requested.length, 1, pod.output());
        assert.equal(requested[0].maxMemoryMiB, 100, "the pod's limit, not the default 256");
        assert.equal(requested[0].cache, cache);
        await Deno.writeTextFile(`${spec.sourceDir}/c.txt`, "cached\n");
        assert.equal((await catFile(`${spec.sourceDir}/c.txt`)).out, "cached\n");
        await w.mounter.unmount(spec.sourceDir, spec.stateDir);
        assert.equal(await withTimeout(pod.status, 30_000, "Mountpoint Pod exit"), 0);
      });
    } finally {
      await Deno.remove(cache, { recursive: true });
    }
  });
});

Deno.test("the driver's custom CA reaches the Mountpoint Pod through its comm directory (TLS MinIO)", async () => {
  const minio = await startMinio({ tls: true });
  const s3 = new AwsObjectClient(minioClientConfig(minio));
  // The node's copy in a root-only directory, as on a node: the pod cannot read it there.
  const private_ = await Deno.makeTempDir({ prefix: "s3csi-node-ca-" });
  await Deno.chmod(private_, 0o700);
  const caBundlePath = `${private_}/ca.pem`;
  await Deno.copyFile(minio.caCertPath!, caBundlePath);
  try {
    await s3.createBucket("tls-bucket");
    await s3.putObject("tls-bucket", "hello.txt", enc.encode("over TLS\n"));
    await withWorld(minio, async (w) => {
      const pod = await w.startPod();
      const spec = w.spec({ bucket: "tls-bucket" });
      await w.mounter.ensureMounted(spec);
      assert.equal((await catFile(`${spec.sourceDir}/hello.txt`)).out, "over TLS\n");
      const copy = await Deno.stat(`${pod.commDir}/ca-bundle.pem`);
      assert.equal(copy.mode! & 0o777, 0o644, "a public certificate, readable by the pod");
      await w.mounter.unmount(spec.sourceDir, spec.stateDir);
      assert.equal(await withTimeout(pod.status, 30_000, "Mountpoint Pod exit"), 0);
    }, { caBundlePath });
  } finally {
    s3.close();
    await minio.stop();
    await Deno.remove(private_, { recursive: true });
  }
});
