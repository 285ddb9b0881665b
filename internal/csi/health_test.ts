import assert from "node:assert/strict";
import { setSink } from "../log/mod.ts";
import { fuseDeviceReadiness, HealthServer, type Readiness } from "./health.ts";

/** Runs a server on a free loopback port whose check answers whatever `state` holds. */
async function withHealth(
  fn: (get: (path?: string, method?: string) => Promise<Response>, state: {
    now: Readiness | Error;
  }) => Promise<void>,
): Promise<void> {
  const state: { now: Readiness | Error } = { now: { ready: true } };
  const server = new HealthServer({
    hostname: "127.0.0.1",
    port: 0,
    check: () =>
      state.now instanceof Error ? Promise.reject(state.now) : Promise.resolve(state.now),
  });
  const prev = setSink({ write: () => {} });
  const port = server.start();
  try {
    await fn(
      (path = "/healthz", method = "GET") => fetch(`http://127.0.0.1:${port}${path}`, { method }),
      state,
    );
  } finally {
    await server.stop();
    setSink(prev);
  }
}

Deno.test("health: /healthz is 200 while ready and 500 with the reason when not", async () => {
  await withHealth(async (get, state) => {
    const ok = await get();
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), "ok\n");
    state.now = { ready: false, reason: "/dev/fuse is not a character device" };
    const down = await get();
    assert.equal(down.status, 500);
    assert.equal(await down.text(), "/dev/fuse is not a character device\n");
    state.now = new Error("check blew up");
    const thrown = await get();
    assert.equal(thrown.status, 500);
    assert.equal(await thrown.text(), "check blew up\n");
    state.now = { ready: true };
    const head = await get("/healthz", "HEAD");
    assert.equal(head.status, 200);
    await head.body?.cancel();
  });
});

Deno.test("health: other paths are 404 and other methods 405", async () => {
  await withHealth(async (get) => {
    const missing = await get("/metrics");
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const post = await get("/healthz", "POST");
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    await post.body?.cancel();
  });
});

Deno.test("health: a port already taken is a startup error naming the address", () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const server = new HealthServer({
      hostname: "127.0.0.1",
      port,
      check: () => Promise.resolve({ ready: true }),
    });
    assert.throws(() => server.start(), {
      name: "StartupError",
      message: new RegExp(`^Cannot serve /healthz on 127\\.0\\.0\\.1:${port}: `),
    });
  } finally {
    taken.close();
  }
});

Deno.test("health: the node is ready while /dev/fuse is a character device", async () => {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-health-" });
  try {
    await Deno.writeTextFile(`${dir}/fuse`, "");
    assert.deepEqual(await fuseDeviceReadiness(`${dir}/fuse`)(), {
      ready: false,
      reason: `${dir}/fuse is not a character device`,
    });
    const missing = await fuseDeviceReadiness(`${dir}/none`)();
    assert.equal(missing.ready, false);
    assert.match((missing as { reason: string }).reason, /^Cannot use .*\/none: /);
    // /dev/null stands in for /dev/fuse: any character device passes.
    assert.deepEqual(await fuseDeviceReadiness("/dev/null")(), { ready: true });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
