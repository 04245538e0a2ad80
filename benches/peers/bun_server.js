// The Bun peer for benches/compare.sh: a raw relay on `Bun.serve`'s WebSocket pub/sub
// (uWebSockets inside), written the way the Bun documentation shows it.
//
//   bun bun_server.js --port 8080 [--host 127.0.0.1] --mode broadcast|echo [--deflate]
//                     [--tls-cert FILE --tls-key FILE]
//
// With --tls-cert and --tls-key it serves wss:// on the same port (Bun.serve's `tls`).
//
// broadcast: every client subscribes to one topic, "all", on open; each message is
//            `ws.publish("all", message)`, which sends it unchanged to every subscriber
//            but the sender (publishToSelf is false). Text arrives as a string and is
//            published as text, binary as a Buffer and published as binary.
// echo:      `ws.send(message)` back to the sender.
//
// Settings, chosen so that Bun is not handicapped by a limit loopchat does not have:
// - perMessageDeflate: false (Bun's default, spelled out); with --deflate, true: Bun's
//   shared compressor and decompressor (uWebSockets' SHARED_COMPRESSOR: no context kept
//   between messages, no zlib state per connection), and every message sent or
//   published asks to be compressed (the `compress` argument of send and publish, as the
//   Bun documentation shows), so that a published message is compressed once for all
//   its subscribers that negotiated the extension.
// - maxPayloadLength: 16 MiB (Bun's default, spelled out; loopchat's limit too).
// - backpressureLimit: 64 MiB, loopchat's output limit per connection. Bun's default is
//   16 MiB, past which publish() silently drops the message for that subscriber; with
//   64 MiB a drop in the benchmark means a client really could not keep up.
// - closeOnBackpressureLimit: false (the default): a slow client loses messages rather
//   than its connection.
// - idleTimeout: 0, no idle timeout (Bun's default is 120 s, with pings shortly before
//   it); sendPings: false, so idle connections cost no traffic, as with loopchat.
// - Every path is upgraded; a request without an upgrade gets 426.
//
// Prints one ready line on stdout once listening; exits 0 on SIGTERM or SIGINT.

function parseArgs(argv) {
  const options = {
    port: 8080,
    host: "127.0.0.1",
    mode: "broadcast",
    deflate: false,
    tlsCert: null,
    tlsKey: null,
  };
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
      case "--tls-cert":
        options.tlsCert = value;
        i++;
        break;
      case "--tls-key":
        options.tlsKey = value;
        i++;
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
  if (!options.tlsCert !== !options.tlsKey) {
    usage("--tls-cert and --tls-key go together");
  }
  return options;
}

function usage(problem) {
  console.error(`bun_server.js: ${problem}`);
  console.error(
    "usage: bun bun_server.js --port P [--host H] --mode broadcast|echo [--deflate] [--tls-cert FILE --tls-key FILE]",
  );
  process.exit(2);
}

const options = parseArgs(process.argv.slice(2));
const TOPIC = "all";

const message =
  options.mode === "broadcast"
    ? (ws, data) => {
        ws.publish(TOPIC, data, options.deflate);
      }
    : (ws, data) => {
        ws.send(data, options.deflate);
      };

const server = Bun.serve({
  hostname: options.host,
  port: options.port,
  development: false,
  // With --tls-cert and --tls-key: wss:// (and https://) on the same port, BoringSSL.
  ...(options.tlsCert
    ? { tls: { cert: Bun.file(options.tlsCert), key: Bun.file(options.tlsKey) } }
    : {}),
  fetch(req, server) {
    if (server.upgrade(req)) {
      return undefined;
    }
    return new Response("this server speaks WebSocket on any path\n", { status: 426 });
  },
  websocket: {
    perMessageDeflate: options.deflate,
    maxPayloadLength: 16 * 1024 * 1024,
    backpressureLimit: 64 * 1024 * 1024,
    closeOnBackpressureLimit: false,
    idleTimeout: 0,
    sendPings: false,
    open(ws) {
      if (options.mode === "broadcast") {
        ws.subscribe(TOPIC);
      }
    },
    message,
  },
});

console.log(
  `bun_server ready: ${options.tlsCert ? "wss" : "ws"}://${server.hostname}:${server.port}/ mode=${options.mode} deflate=${options.deflate} bun=${Bun.version} pid=${process.pid}`,
);

function stop(signal) {
  console.error(`bun_server: ${signal}, stopping`);
  // true: close the open connections too, without waiting for them.
  server.stop(true);
  process.exit(0);
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
