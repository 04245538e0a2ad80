// An echo server on Node's `ws` with permessage-deflate: an independent peer for
// loopchat's client role (run by tests/deflate_peers.rs and tests/tls_client.rs).
//
// `perMessageDeflate: { threshold: 0 }` compresses every message, and leaves ws's other
// defaults: the server keeps its compression context from message to message (no
// server_no_context_takeover) and lets the client keep its own, which is what the tests
// want to exercise. It prints `listening PORT`, then `answer VALUE` with the
// Sec-WebSocket-Extensions it answers each handshake with (`none` if it declined). It
// exits when its standard input closes, so it never outlives the test.
//
// Options:
//   --tls-cert FILE --tls-key FILE   serve wss:// (Node's `https`, PEM files) instead of ws://,
//                                    printing `tls sni=NAME alpn=PROTOCOL` for each
//                                    handshake (`none` for what the client did not send)
//   --relay                          send each message to every other client instead of
//                                    echoing it (a broadcast relay, for `loopchat bench
//                                    broadcast`)
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { WebSocketServer } from "ws";

const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const certFile = option("--tls-cert");
const keyFile = option("--tls-key");
const relay = args.includes("--relay");

const perMessageDeflate = { threshold: 0 };
let server;
let address;
if (certFile && keyFile) {
  const https = createServer({
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    ALPNProtocols: ["http/1.1"],
  });
  https.on("secureConnection", (socket) =>
    console.log(`tls sni=${socket.servername || "none"} alpn=${socket.alpnProtocol || "none"}`),
  );
  server = new WebSocketServer({ server: https, perMessageDeflate });
  https.listen(0, "127.0.0.1", () => console.log(`listening ${https.address().port}`));
  // A failed TLS handshake (our client refusing the certificate) is reported, not fatal.
  https.on("tlsClientError", (e) => console.log(`tls-error ${e.code || e.message}`));
} else {
  server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate });
  server.on("listening", () => console.log(`listening ${server.address().port}`));
}
server.on("headers", (headers) => {
  const answer = headers.find((h) => h.toLowerCase().startsWith("sec-websocket-extensions:"));
  console.log(`answer ${answer ? answer.slice(answer.indexOf(":") + 1).trim() : "none"}`);
});
server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    if (!relay) return ws.send(data, { binary: isBinary });
    for (const other of server.clients) {
      if (other !== ws && other.readyState === other.OPEN) other.send(data, { binary: isBinary });
    }
  });
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
