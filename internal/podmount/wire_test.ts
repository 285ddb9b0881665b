import assert from "node:assert/strict";
import {
  AF_UNIX,
  close,
  O_RDONLY,
  open,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  socketpair,
  write,
} from "../sys/libc.ts";
import { ProtocolError } from "./contract.ts";
import { peerGone, receiveLine, sendLine, waitPeerGone, WireTimeout } from "./wire.ts";

const soon = () => Date.now() + 5_000;
const pair = () => socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK);

Deno.test("sendLine() and receiveLine() carry one JSON line and the fd sent with it", async () => {
  const [a, b] = pair();
  const fd = open("/dev/null", O_RDONLY);
  try {
    await sendLine(a, { hello: "wörld", n: 1 }, soon(), fd);
    const got = await receiveLine(b, soon(), "the line");
    assert.deepEqual(JSON.parse(got.line), { hello: "wörld", n: 1 });
    assert.ok(got.fd >= 0);
    assert.equal(await Deno.readLink(`/proc/self/fd/${got.fd}`), "/dev/null");
    close(got.fd);
  } finally {
    close(fd);
    close(a);
    close(b);
  }
});

Deno.test("receiveLine() joins a line written in pieces, and times out on a silent peer", async () => {
  const [a, b] = pair();
  try {
    const enc = new TextEncoder();
    write(a, enc.encode('{"par'));
    const pending = receiveLine(b, soon(), "the line");
    await new Promise((r) => setTimeout(r, 20));
    write(a, enc.encode('t":2}\n'));
    assert.deepEqual(JSON.parse((await pending).line), { part: 2 });
    await assert.rejects(receiveLine(b, Date.now() + 50, "the reply"), WireTimeout);
  } finally {
    close(a);
    close(b);
  }
});

Deno.test("receiveLine() reports a peer that hangs up before a newline; peerGone() sees it", async () => {
  const [a, b] = pair();
  try {
    assert.equal(await peerGone(b), false);
    write(a, new TextEncoder().encode('{"half'));
    close(a);
    await assert.rejects(
      receiveLine(b, soon(), "the reply"),
      (e: unknown) =>
        e instanceof ProtocolError && /closed the socket before the reply/.test(e.message),
    );
    assert.equal(await peerGone(b), true);
    assert.equal(await waitPeerGone(b, soon()), true);
  } finally {
    close(b);
  }
});
