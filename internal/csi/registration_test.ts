import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { setSink } from "../log/mod.ts";
import {
  defaultKubeletEndpoint,
  registrationDefinition,
  RegistrationServer,
  registrationSocket,
} from "./registration.ts";

const DRIVER = "s3.csi.scality.com";
const HOST_ENDPOINT = `/var/lib/kubelet/plugins/${DRIVER}/csi.sock`;

// deno-lint-ignore no-explicit-any
type Reply = any;

/** A client that calls the socket the way the kubelet's plugin watcher does. */
function kubeletClient(socket: string) {
  const Client = registrationDefinition();
  const client = new Client(`unix://${socket}`, grpc.credentials.createInsecure());
  const call = (method: string, request: unknown) =>
    new Promise<Reply>((resolve, reject) => {
      // deno-lint-ignore no-explicit-any
      (client as any)[method](request, (err: Error | null, reply: Reply) => {
        if (err) reject(err);
        else resolve(reply);
      });
    });
  return { call, close: () => client.close() };
}

async function withRegistration(
  fn: (server: RegistrationServer, socket: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-reg-" });
  const server = new RegistrationServer({
    driverName: DRIVER,
    kubeletEndpoint: HOST_ENDPOINT,
    registrationDir: `${dir}/plugins_registry`,
  });
  try {
    const socket = await server.listen();
    await fn(server, socket, dir);
  } finally {
    await server.stop(100);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("registration: GetInfo answers a CSI plugin, its name, host endpoint and versions", async () => {
  await withRegistration(async (_server, socket, dir) => {
    assert.equal(socket, `${dir}/plugins_registry/${DRIVER}-reg.sock`);
    const kubelet = kubeletClient(socket);
    try {
      const info = await kubelet.call("GetInfo", {});
      assert.deepEqual(
        { ...info },
        {
          type: "CSIPlugin",
          name: DRIVER,
          endpoint: HOST_ENDPOINT,
          supported_versions: ["1.0.0"],
        },
      );
    } finally {
      kubelet.close();
    }
  });
});

Deno.test("registration: NotifyRegistrationStatus records the verdict; a refusal is logged as an error", async () => {
  const lines: string[] = [];
  const prev = setSink({ write: (l) => lines.push(l) });
  try {
    await withRegistration(async (server, socket) => {
      assert.deepEqual(server.state, { state: "waiting" });
      const kubelet = kubeletClient(socket);
      try {
        await kubelet.call("NotifyRegistrationStatus", {
          plugin_registered: false,
          error: "version 0.3.0 is not supported",
        });
        assert.deepEqual(server.state, {
          state: "refused",
          error: "version 0.3.0 is not supported",
        });
        const refused = lines.map((l) => JSON.parse(l)).find((r) => r.level === "error");
        assert.equal(refused?.error, "version 0.3.0 is not supported");
        assert.deepEqual({
          ...await kubelet.call("NotifyRegistrationStatus", { plugin_registered: true }),
        }, {});
        assert.deepEqual(server.state, { state: "registered" });
      } finally {
        kubelet.close();
      }
    });
  } finally {
    setSink(prev);
  }
});

Deno.test("registration: a stale socket file is replaced; the socket is owner-only; stop removes it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-reg-" });
  const socket = registrationSocket(`${dir}/`, DRIVER);
  await Deno.writeTextFile(socket, "left by a previous run");
  const server = new RegistrationServer({
    driverName: DRIVER,
    kubeletEndpoint: HOST_ENDPOINT,
    registrationDir: dir,
  });
  try {
    assert.equal(await server.listen(), socket);
    const st = await Deno.stat(socket);
    assert.ok(st.isSocket);
    assert.equal(st.mode! & 0o777, 0o600);
    await server.stop(100);
    await assert.rejects(Deno.stat(socket), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("registration: the kubelet's view of the CSI socket", () => {
  // In a container the socket directory is mounted from the conventional host path.
  assert.equal(defaultKubeletEndpoint("/csi/csi.sock", "/var/lib/kubelet/", DRIVER), HOST_ENDPOINT);
  // On the host, a socket under the kubelet directory is already the kubelet's path.
  assert.equal(
    defaultKubeletEndpoint("/var/lib/kubelet/plugins/x/csi.sock", "/var/lib/kubelet", DRIVER),
    "/var/lib/kubelet/plugins/x/csi.sock",
  );
  assert.equal(
    defaultKubeletEndpoint("/var/lib/kubelet2/csi.sock", "/var/lib/kubelet", DRIVER),
    HOST_ENDPOINT,
  );
});
