// The Node peer for benches/compare.sh: a raw relay on the `ws` library (8.x), written
// the way a ws user would write it, so the comparison is with idiomatic Node code.
//
//   node ws_server.mjs --port 8080 [--host 127.0.0.1] --mode broadcast|echo [--deflate]
//
// broadcast: every message goes, unchanged, to every OTHER open client: iterate
//            `wss.clients`, skip the sender, `client.send(data, { binary: isBinary })`
//            (text stays text, binary stays binary; the Buffer is not copied per client).
// echo:      every message goes back to its sender.
//
// Settings, and why:
// - perMessageDeflate: false (the ws 8 default, spelled out); with --deflate, true, as
//   the ws documentation enables it: ws's defaults then (messages of 1 KiB or more
//   compressed, the server keeping its compression context from message to message
//   unless the client asks otherwise, compression and decompression on zlib's thread
//   pool). ws compresses each send separately: a broadcast is compressed once per
//   recipient, each with that connection's own zlib state.
// - maxPayload: 16 MiB, loopchat's default message limit (ws's default is 100 MiB).
// - Any path is upgraded (no `path` option), as loopchat accepts /ws and /.
// - UTF-8 validation of text stays on (the ws default), as loopchat validates too.
// - The HTTP server is the one ws creates for the `port` option.
//
// Prints one ready line on stdout once listening; exits 0 on SIGTERM or SIGINT.

import { WebSocketServer, WebSocket } from "ws";
import { createRequire } from "node:module";

function parseArgs(argv) {
  const options = { port: 8080, host: "127.0.0.1", mode: "broadcast", deflate: false };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case "--port":
        options.port = Number(value);
        i++;
        break;
      case "--host":
        options.host = value;
        i++;
        break;
      case "--mode":
        options.mode = value;
        i++;
        break;
      case "--deflate":
        options.deflate = true;
        break;
      default:
        usage(`unknown argument ${argv[i]}`);
    }
  }
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    usage("--port takes a port number");
  }
  if (options.mode !== "broadcast" && options.mode !== "echo") {
    usage("--mode is broadcast or echo");
  }
  return options;
}

function usage(problem) {
  console.error(`ws_server.mjs: ${problem}`);
  console.error("usage: node ws_server.mjs --port P [--host H] --mode broadcast|echo [--deflate]");
  process.exit(2);
}

const options = parseArgs(process.argv.slice(2));
const wsVersion = createRequire(import.meta.url)("ws/package.json").version;

const wss = new WebSocketServer({
  host: options.host,
  port: options.port,
  perMessageDeflate: options.deflate,
  maxPayload: 16 * 1024 * 1024,
});

if (options.mode === "broadcast") {
  wss.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => {
      for (const client of wss.clients) {
        if (client !== ws && client.readyState === WebSocket.OPEN) {
          client.send(data, { binary: isBinary });
        }
      }
    });
  });
} else {
  wss.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => {
      ws.send(data, { binary: isBinary });
    });
  });
}

wss.on("listening", () => {
  const { address, port } = wss.address();
  console.log(
    `ws_server ready: ws://${address}:${port}/ mode=${options.mode} deflate=${options.deflate} ws=${wsVersion} node=${process.version} pid=${process.pid}`,
  );
});

wss.on("error", (error) => {
  console.error(`ws_server: ${error.message}`);
  process.exit(1);
});

function stop(signal) {
  // Stop accepting, drop every client without a closing handshake (the benchmark is
  // over), and leave.
  console.error(`ws_server: ${signal}, stopping with ${wss.clients.size} clients`);
  for (const client of wss.clients) {
    client.terminate();
  }
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
