// Replays recorded GitHub REST exchanges on 127.0.0.1 for our conformance
// tests, using the @octokit/fixtures-server middleware inside our own express
// app: its bundled command listens on every interface, this one never does.
//
//   node conformance/replay/server.mjs [--port N]
//
// Prints one line, {"url":"http://127.0.0.1:N"}, once listening, then nothing
// more on stdout. Stops on SIGTERM/SIGINT, and when a piped stdin closes so that
// a test process that dies does not leave the server behind.

import { fstatSync } from "node:fs";
import express from "express";

import { allScenarios, loadMiddlewareModules } from "./scenarios.mjs";

const HOST = "127.0.0.1";
// Long enough for a slow CI run to walk a whole scenario.
const TTL_MS = 15 * 60 * 1000;

function parsePort(argv) {
  let port = 0;
  for (let i = 0; i < argv.length; i++) {
    let value;
    if (argv[i] === "--port") value = argv[++i];
    else if (argv[i].startsWith("--port=")) value = argv[i].slice("--port=".length);
    else throw new Error(`unknown argument ${argv[i]}`);
    if (!/^\d+$/.test(value ?? "") || Number(value) > 65535) {
      throw new Error(`--port wants a number from 0 to 65535, got ${value}`);
    }
    port = Number(value);
  }
  return port;
}

async function main() {
  const port = parsePort(process.argv.slice(2));
  const { fixtureServerMiddleware, fixtures, cachimo } = await loadMiddlewareModules();

  // The middleware proxies to api.github.com and relies on nock to answer.
  // Should no interceptor match, the request must fail here rather than leave
  // the machine.
  fixtures.nock.disableNetConnect();

  const scenarios = allScenarios();
  const app = express();
  app.disable("x-powered-by");

  app.get("/ping", (_req, res) => res.json({ ok: true }));

  // The middleware drops a mock from cachimo once all its interceptors are
  // used, so an id it no longer knows has nothing pending.
  app.get("/fixtures/:id/pending", (req, res) => {
    const mock = cachimo.get(req.params.id);
    res.json({ pending: mock ? mock.pending() : [] });
  });

  const server = await new Promise((resolveListen, rejectListen) => {
    const s = app.listen(port, HOST);
    s.once("listening", () => resolveListen(s));
    s.once("error", rejectListen);
  });
  const url = `http://${HOST}:${server.address().port}`;

  // Created only now: the middleware writes this URL, with the real port,
  // into every Link and Location header and body URL it serves.
  app.use(
    fixtureServerMiddleware({
      fixturesUrl: url,
      fixtures: scenarios,
      ttl: TTL_MS,
      logLevel: "warn",
    }),
  );

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close(() => process.exit(0));
    server.closeAllConnections();
    // cachimo's expiry timers would otherwise keep the process alive.
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  // Only a pipe or socket tells us about a parent going away; /dev/null or a
  // terminal on stdin must not stop the server at once.
  const stdin = fstatSync(0);
  if (stdin.isFIFO() || stdin.isSocket()) {
    process.stdin.on("end", stop);
    process.stdin.on("close", stop);
    process.stdin.on("error", stop);
    process.stdin.resume();
  }

  process.stdout.write(JSON.stringify({ url }) + "\n");
}

main().catch((error) => {
  console.error(`replay server: ${error.message}`);
  process.exit(1);
});
