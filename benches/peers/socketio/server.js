// The Socket.IO peer of benches/scaleout.sh: one instance of a chat on Socket.IO 4 with
// the Redis adapter (@socket.io/redis-adapter 8, node-redis 4), written the way the
// Socket.IO documentation shows it. Run two of them on one Redis and they are one chat.
//
//   node server.js --port 3001 [--host 127.0.0.1] --redis redis://127.0.0.1:6400
//
// Every client joins the room "lobby" on connection; a `message` event is sent to the
// whole room with `io.to("lobby").emit("message", text)`, the sender included, as in a
// chat. The adapter delivers it to this instance's members of the room and PUBLISHes it
// once on Redis (channel socket.io#/#lobby#), from which every other instance delivers it
// to its own members.
//
// Settings, and why:
// - transports: ["websocket"]: no HTTP long-polling, so clients speak WebSocket from the
//   start as they do with loopchat (the client is told the same).
// - perMessageDeflate: false (Socket.IO's default, spelled out): no one compresses.
// - serveClient: false: the client bundle is not served; the load generator brings its own.
// - node-redis 4 (the adapter's tested client, as in its README), the subscriber a
//   duplicate() of the publisher.
// - Everything else, Socket.IO's defaults (heartbeat every 25 s, 1 MB message limit).
//
// Prints one ready line on stdout once listening; exits 0 on SIGTERM or SIGINT.

"use strict";

const { createServer } = require("node:http");
const { readFileSync } = require("node:fs");
const path = require("node:path");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-adapter");

const ROOM = "lobby";

function parseArgs(argv) {
  const options = { port: 3000, host: "127.0.0.1", redis: null };
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
      case "--redis":
        options.redis = value;
        i++;
        break;
      default:
        usage(`unknown argument ${argv[i]}`);
    }
  }
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    usage("--port takes a port number");
  }
  if (!options.redis || !/^rediss?:\/\//.test(options.redis)) {
    usage("--redis takes a URL such as redis://127.0.0.1:6400");
  }
  return options;
}

function usage(problem) {
  console.error(`server.js: ${problem}`);
  console.error("usage: node server.js --port P [--host H] --redis redis://HOST:PORT");
  process.exit(2);
}

// A package's version from its package.json (some do not export that file).
function versionOf(name) {
  try {
    const main = require.resolve(name);
    let dir = path.dirname(main);
    while (dir !== path.dirname(dir)) {
      try {
        const json = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
        if (json.name === name) return json.version;
      } catch {
        // not here: one folder up
      }
      dir = path.dirname(dir);
    }
  } catch {
    // not installed
  }
  return "?";
}

async function main() {
  const options = parseArgs(process.argv.slice(2));

  const pubClient = createClient({ url: options.redis });
  const subClient = pubClient.duplicate();
  for (const [name, client] of [["pub", pubClient], ["sub", subClient]]) {
    client.on("error", (error) => console.error(`server.js: redis ${name}: ${error.message}`));
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const httpServer = createServer();
  const io = new Server(httpServer, {
    transports: ["websocket"],
    perMessageDeflate: false,
    serveClient: false,
    adapter: createAdapter(pubClient, subClient),
  });

  io.on("connection", (socket) => {
    socket.join(ROOM);
    socket.on("message", (text) => {
      io.to(ROOM).emit("message", text);
    });
  });

  httpServer.on("error", (error) => {
    console.error(`server.js: ${error.message}`);
    process.exit(1);
  });
  httpServer.listen(options.port, options.host, () => {
    const { address, port } = httpServer.address();
    console.log(
      `socketio_server ready: ws://${address}:${port}/socket.io/ redis=${options.redis} ` +
        `socket.io=${versionOf("socket.io")} redis-adapter=${versionOf("@socket.io/redis-adapter")} ` +
        `redis=${versionOf("redis")} node=${process.version} pid=${process.pid}`,
    );
  });

  function stop(signal) {
    // The benchmark is over: drop the clients, leave Redis, exit.
    console.error(`server.js: ${signal}, stopping with ${io.engine.clientsCount} clients`);
    io.close();
    Promise.allSettled([pubClient.disconnect(), subClient.disconnect()]).then(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  }
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((error) => {
  console.error(`server.js: ${error.stack || error}`);
  process.exit(1);
});
