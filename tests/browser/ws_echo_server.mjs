// An echo server on Node's `ws` with permessage-deflate: an independent peer for
// loopchat's client role (run by tests/deflate_peers.rs).
//
// `perMessageDeflate: { threshold: 0 }` compresses every message, and leaves ws's other
// defaults: the server keeps its compression context from message to message (no
// server_no_context_takeover) and lets the client keep its own, which is what the tests
// want to exercise. It prints `listening PORT`, then `answer VALUE` with the
// Sec-WebSocket-Extensions it answers each handshake with (`none` if it declined). It
// exits when its standard input closes, so it never outlives the test.
import { WebSocketServer } from "ws";

const server = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  perMessageDeflate: { threshold: 0 },
});
server.on("listening", () => console.log(`listening ${server.address().port}`));
server.on("headers", (headers) => {
  const answer = headers.find((h) => h.toLowerCase().startsWith("sec-websocket-extensions:"));
  console.log(`answer ${answer ? answer.slice(answer.indexOf(":") + 1).trim() : "none"}`);
});
server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
