// Checks the replay server end to end: starts server.mjs, walks every composed
// scenario the way our GitHub connector does (each next request derived from
// the bodies served, not from scenarios.mjs), follows the recorded
// paginate-issues Link headers, and checks the server's lifecycle.
//
//   node conformance/replay/selftest.mjs

import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const SERVER = join(here, "server.mjs");
const ORG = "octokit-fixture-org";
const STRICT_HEADERS = {
  Authorization: "token 0000000000000000000000000000000000000001",
  Accept: "application/vnd.github.v3+json",
};
const START_TIMEOUT_MS = 15000;

class Mismatch extends Error {}

function check(condition, message) {
  if (!condition) throw new Mismatch(message);
}

function startServer() {
  const child = spawn(process.execPath, [SERVER], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const url = new Promise((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => reject(new Error(`server printed no url within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    child.stdout.on("data", (d) => {
      stdout += d;
      const newline = stdout.indexOf("\n");
      if (newline < 0) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout.slice(0, newline)).url);
      } catch {
        reject(new Error(`server's first line is not {"url":...}: ${stdout.slice(0, newline)}`));
      }
    });
    exited.then(({ code }) => reject(new Error(`server exited with ${code} before listening: ${stderr}`)));
  });
  return { child, url, exited, stderr: () => stderr };
}

async function createFixture(server, scenario) {
  const response = await fetch(`${server}/fixtures`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ scenario }),
  });
  const body = await response.json();
  check(response.status === 201, `POST /fixtures ${scenario}: status ${response.status} ${JSON.stringify(body)}`);
  check(body.id && body.url, `POST /fixtures ${scenario}: no id/url in ${JSON.stringify(body)}`);
  return body;
}

async function pending(server, id) {
  const response = await fetch(`${server}/fixtures/${id}/pending`);
  check(response.status === 200, `pending: status ${response.status}`);
  const body = await response.json();
  check(Array.isArray(body.pending), `pending: ${JSON.stringify(body)}`);
  return body.pending;
}

async function ghGet(url) {
  const response = await fetch(url, { headers: STRICT_HEADERS });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, headers: response.headers, body };
}

function isSecondaryRateLimit(r) {
  return (
    r.status === 403 &&
    r.headers.has("retry-after") &&
    Number(r.headers.get("x-ratelimit-remaining")) > 0 &&
    /secondary rate limit/i.test(r.body?.message ?? "")
  );
}

// A connector's organisation scan, reduced to what is needed to know which
// request comes next. Returns every exchange as {label, path, status}.
async function orgScan(base) {
  const log = [];
  let waitedMs = 0;
  const get = async (label, path) => {
    let r = await ghGet(base + path);
    log.push({ label, path, status: r.status });
    check(
      r.headers.get("content-type") === "application/json; charset=utf-8",
      `${path}: content-type ${r.headers.get("content-type")} (${JSON.stringify(r.body).slice(0, 300)})`,
    );
    check(r.headers.has("x-ratelimit-remaining"), `${path}: no x-ratelimit-remaining`);
    if (isSecondaryRateLimit(r)) {
      const seconds = Number(r.headers.get("retry-after"));
      const started = Date.now();
      await sleep(seconds * 1000);
      waitedMs += Date.now() - started;
      r = await ghGet(base + path);
      log.push({ label, path, status: r.status });
    }
    return r;
  };
  const list = (r, what) => {
    check(Array.isArray(r.body) && r.body.length > 0, `${what}: expected a non-empty list, got ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body;
  };

  const org = `/orgs/${ORG}`;
  const organization = await get("org", org);
  check(organization.body?.login === ORG, `org: login ${organization.body?.login}`);

  const members = list(await get("members", `${org}/members?per_page=100`), "members");
  for (const { login } of members) {
    const m = await get(`membership:${login}`, `${org}/memberships/${encodeURIComponent(login)}`);
    check(m.body?.user?.login === login && m.body?.role, `membership ${login}: ${JSON.stringify(m.body).slice(0, 200)}`);
  }
  await get("members-2fa-disabled", `${org}/members?filter=2fa_disabled&per_page=100`);
  await get("invitations", `${org}/invitations?per_page=100`);

  const teams = list(await get("teams", `${org}/teams?per_page=100`), "teams");
  for (const { slug } of teams) {
    list(await get(`team-members:${slug}`, `${org}/teams/${encodeURIComponent(slug)}/members?per_page=100`), `team ${slug}`);
  }

  const repos = list(await get("repos", `${org}/repos?per_page=100`), "repos");
  for (const { full_name: fullName, default_branch: branch } of repos) {
    list(await get(`collaborators:${fullName}`, `/repos/${fullName}/collaborators?affiliation=all&per_page=100`), `collaborators ${fullName}`);
    const p = await get(`protection:${fullName}`, `/repos/${fullName}/branches/${encodeURIComponent(branch)}/protection`);
    if (p.status === 200) check(typeof p.body?.enforce_admins?.enabled === "boolean", `protection ${fullName}: ${JSON.stringify(p.body).slice(0, 200)}`);
    if (p.status === 404) check(p.body?.message === "Branch not protected", `protection ${fullName}: ${JSON.stringify(p.body)}`);
  }
  return { log, waitedMs };
}

// Labels whose answers are not a single 200, per composed scenario.
const EXPECTED = {
  "org-scan": {},
  "org-scan-unprotected": { "protection:octocat/Hello-World": [404] },
  "org-scan-secondary-rate-limit": { members: [403, 200] },
  "org-scan-no-scope": { "members-2fa-disabled": [403] },
};

function expectedStatuses(log, overrides) {
  const seen = [];
  for (const { label } of log) if (!seen.includes(label)) seen.push(label);
  for (const label of Object.keys(overrides)) check(seen.includes(label), `no request labelled ${label} was made`);
  return seen.flatMap((label) => (overrides[label] ?? [200]).map((status) => `${label} ${status}`));
}

async function testComposed(server, scenario) {
  const { id, url } = await createFixture(server, scenario);
  const before = await pending(server, id);
  const { log, waitedMs } = await orgScan(url);
  const actual = log.map((e) => `${e.label} ${e.status}`);
  const expected = expectedStatuses(log, EXPECTED[scenario]);
  check(
    JSON.stringify(actual) === JSON.stringify(expected),
    `statuses differ\n  expected: ${expected.join(", ")}\n  actual:   ${actual.join(", ")}`,
  );
  check(before.length === log.length, `${before.length} interceptors pending at start but ${log.length} requests made`);
  if (scenario === "org-scan-secondary-rate-limit") check(waitedMs >= 900, `waited only ${waitedMs} ms before retrying`);
  const left = await pending(server, id);
  check(left.length === 0, `still pending: ${left.join(", ")}`);
  return `${log.length} requests`;
}

async function testStrictHeaders(server) {
  const { id, url } = await createFixture(server, "get-organization");
  const noAuth = await fetch(`${url}/orgs/${ORG}`, { headers: { Accept: STRICT_HEADERS.Accept } });
  await noAuth.text();
  check(noAuth.status !== 200, "a request without Authorization was answered 200");
  check((await pending(server, id)).length === 1, "a refused request consumed the interceptor");
  const ok = await ghGet(`${url}/orgs/${ORG}`);
  check(ok.status === 200, `strict request: status ${ok.status}`);
  check((await pending(server, id)).length === 0, "get-organization still pending");
  return `unauthenticated request refused with ${noAuth.status}`;
}

function nextLink(linkHeader) {
  if (!linkHeader) return null;
  for (const part of linkHeader.split(",")) {
    const m = part.match(/<([^>]+)>\s*;\s*rel="([^"]+)"/);
    if (m && m[2].split(/\s+/).includes("next")) return m[1];
  }
  return null;
}

async function testPaginateIssues(server) {
  const { id, url } = await createFixture(server, "paginate-issues");
  let next = `${url}/repos/${ORG}/paginate-issues/issues?per_page=3`;
  let pages = 0;
  let issues = 0;
  while (next) {
    check(next.startsWith(server + "/"), `Link points away from the replay server: ${next}`);
    check(pages < 10, "more than 10 pages: Link loop?");
    const r = await ghGet(next);
    check(r.status === 200, `page ${pages + 1}: status ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    check(Array.isArray(r.body), `page ${pages + 1}: not a list`);
    pages += 1;
    issues += r.body.length;
    next = nextLink(r.headers.get("link"));
  }
  check(pages === 5, `expected 5 pages, followed ${pages}`);
  const left = await pending(server, id);
  check(left.length === 0, `still pending: ${left.join(", ")}`);
  return `${pages} pages, ${issues} issues`;
}

async function testUnknownScenario(server) {
  const response = await fetch(`${server}/fixtures`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ scenario: "no-such-scenario" }),
  });
  await response.text();
  check(response.status === 400, `unknown scenario: status ${response.status}`);
  return "400";
}

async function testPing(server) {
  const r = await fetch(`${server}/ping`);
  check(r.status === 200, `ping: status ${r.status}`);
  await r.text();
  check(new URL(server).hostname === "127.0.0.1", `server url ${server} is not on 127.0.0.1`);
  return server;
}

async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Mismatch(`${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function testExitOnSigterm(main) {
  main.child.kill("SIGTERM");
  const { code, signal } = await withTimeout(main.exited, 5000, "server did not exit on SIGTERM");
  check(code === 0, `exit code ${code} signal ${signal} after SIGTERM`);
  return "exit 0";
}

async function testExitOnStdinClose() {
  const other = startServer();
  await other.url;
  other.child.stdin.end();
  try {
    const { code } = await withTimeout(other.exited, 5000, "server did not exit when its stdin closed");
    check(code === 0, `exit code ${code} after stdin closed`);
  } finally {
    if (other.child.exitCode === null && other.child.signalCode === null) other.child.kill("SIGKILL");
  }
  return "exit 0";
}

async function run() {
  const main = startServer();
  const results = [];
  const test = async (name, fn) => {
    try {
      const note = await fn();
      results.push(true);
      console.log(`ok - ${name}${note ? ` (${note})` : ""}`);
    } catch (error) {
      results.push(false);
      console.log(`not ok - ${name}: ${error instanceof Mismatch ? error.message : error.stack}`);
    }
  };

  let server;
  try {
    server = await main.url;
  } catch (error) {
    console.error(`replay selftest: ${error.message}`);
    main.child.kill("SIGKILL");
    console.log("0 passed, 1 failed");
    process.exit(1);
  }

  await test("server answers /ping on 127.0.0.1", () => testPing(server));
  await test("unknown scenario is refused", () => testUnknownScenario(server));
  await test("strict headers are enforced", () => testStrictHeaders(server));
  for (const scenario of Object.keys(EXPECTED)) {
    await test(`composed scenario ${scenario}`, () => testComposed(server, scenario));
  }
  await test("recorded paginate-issues followed by Link rel=next", () => testPaginateIssues(server));
  await test("server exits cleanly on SIGTERM", () => testExitOnSigterm(main));
  await test("server exits when its stdin closes", () => testExitOnStdinClose());

  if (main.child.exitCode === null && main.child.signalCode === null) main.child.kill("SIGKILL");
  const passed = results.filter(Boolean).length;
  const failed = results.length - passed;
  if (failed > 0 && main.stderr()) console.log(`server stderr:\n${main.stderr()}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

run();
