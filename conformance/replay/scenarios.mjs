// Scenarios for the replay server: every recorded exchange published in
// @octokit/fixtures, plus "composed" scenarios that follow the request order of
// our GitHub connector's organisation scan. A composed scenario is a list of
// nock definitions shaped like the recorded ones. Its response bodies are
// either recorded entries or GitHub's OpenAPI examples (extracted into
// conformance/data/github-openapi by extract-openapi-examples.mjs), never
// edited; only the two 403 answers marked as mocks below are our own words.

import { readdirSync, readFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { fileNameFor } from "./extract-openapi-examples.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const EXAMPLES_DIR = resolve(here, "../data/github-openapi");

export const ORG = "octokit-fixture-org";
export const PER_PAGE = 100;
export const SCOPE = "https://api.github.com:443";

// The middleware keeps its mocks in its own copies of @octokit/fixtures (nock
// inside) and cachimo. Resolving both from the middleware's folder makes sure
// the server inspects those very instances, however npm lays out node_modules.
const requireFromMiddleware = createRequire(
  createRequire(import.meta.url).resolve("@octokit/fixtures-server"),
);
export const fixturesEntry = requireFromMiddleware.resolve("@octokit/fixtures");
export const cachimoEntry = requireFromMiddleware.resolve("cachimo");

export async function loadMiddlewareModules() {
  const [server, fixtures, cachimo] = await Promise.all([
    import("@octokit/fixtures-server"),
    import(pathToFileURL(fixturesEntry).href),
    import(pathToFileURL(cachimoEntry).href),
  ]);
  return {
    fixtureServerMiddleware: server.default,
    fixtures: fixtures.default,
    cachimo: cachimo.default,
  };
}

// Same selection and naming as the middleware's own defaults: one scenario
// per folder holding a normalized-fixture.json, keyed by the folder name.
export function loadRecordedScenarios() {
  const root = join(dirname(fixturesEntry), "scenarios", "api.github.com");
  const recorded = {};
  for (const name of readdirSync(root).sort()) {
    const file = join(root, name, "normalized-fixture.json");
    if (existsSync(file)) recorded[name] = JSON.parse(readFileSync(file, "utf8"));
  }
  return recorded;
}

export function readOpenApiExample(operationId) {
  const file = join(EXAMPLES_DIR, fileNameFor(operationId));
  return JSON.parse(readFileSync(file, "utf8"));
}

// Headers every composed answer carries, copied from the recorded
// get-organization answer; the per-resource ones (etag, last-modified,
// cache-control, x-accepted-oauth-scopes, content-length) are left out, and
// the middleware recomputes content-length itself.
const COPIED_HEADERS = [
  "access-control-allow-origin",
  "access-control-expose-headers",
  "connection",
  "content-security-policy",
  "content-type",
  "date",
  "referrer-policy",
  "strict-transport-security",
  "x-content-type-options",
  "x-frame-options",
  "x-github-media-type",
  "x-github-request-id",
  "x-oauth-scopes",
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
  "x-ratelimit-resource",
  "x-ratelimit-used",
  "x-xss-protection",
];

function pick(object, keys) {
  return Object.fromEntries(keys.filter((k) => k in object).map((k) => [k, object[k]]));
}

function makeComposer(recorded) {
  const template = recorded["get-organization"][0];
  const baseHeaders = pick(template.headers, COPIED_HEADERS);
  if (baseHeaders["content-type"] !== "application/json; charset=utf-8") {
    throw new Error("recorded get-organization answer is no longer JSON");
  }

  // Entries are numbered in request order so that the rate-limit budget the
  // code writes into each composed answer goes down as a real scan's would.
  // The recorded entries keep their own (normalized) rate-limit values.
  function rateLimit(position) {
    const limit = Number(template.headers["x-ratelimit-limit"]);
    const used = position + 1;
    return {
      "x-ratelimit-remaining": String(limit - used),
      "x-ratelimit-used": used,
    };
  }

  function composed(path, status, response, extraHeaders = {}) {
    return (position) => ({
      scope: SCOPE,
      method: "get",
      path,
      body: "",
      status,
      response: structuredClone(response),
      reqheaders: { ...template.reqheaders },
      responseIsBinary: false,
      headers: { ...baseHeaders, ...rateLimit(position), ...extraHeaders },
    });
  }

  function recordedAt(entry, path) {
    return () => ({ ...structuredClone(entry), path });
  }

  function build(steps) {
    return steps.map((step, position) => step(position));
  }

  return { composed, recordedAt, build, template };
}

// GitHub publishes no recording of a secondary rate limit, so this answer is a
// mock written by us: GitHub's wording and documentation link, status 403,
// retry-after set, primary budget not exhausted (which is how a client tells
// it apart from a primary limit).
function mockSecondaryRateLimit(composer, path) {
  return composer.composed(
    path,
    403,
    {
      message:
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
      documentation_url:
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
    },
    { "retry-after": "1" },
  );
}

// Also a mock written by us: a token that may list members but not see their
// two-factor status gets this 403 with budget left, which the connector must
// record as "unknown" rather than treat as a failure of the whole scan.
function mockResourceNotAccessible(composer, path) {
  return composer.composed(path, 403, {
    message: "Resource not accessible by integration",
    documentation_url: "https://docs.github.com/rest/orgs/members#list-organization-members",
  });
}

function orgScanSteps(composer, recorded, variant) {
  const { composed, recordedAt } = composer;
  const org = `/orgs/${ORG}`;
  const members = readOpenApiExample("orgs/list-members");
  const membership = readOpenApiExample("orgs/get-membership-for-user");
  const invitations = readOpenApiExample("orgs/list-pending-invitations");
  const teams = readOpenApiExample("teams/list");
  const teamMembers = readOpenApiExample("teams/list-members-in-org");
  const repos = readOpenApiExample("repos/list-for-org");
  const collaborators = readOpenApiExample("repos/list-collaborators");
  const protection = readOpenApiExample("repos/get-branch-protection");

  const [getOrganization] = recorded["get-organization"];
  const [branchNotProtected] = recorded["branch-protection"];
  if (branchNotProtected.status !== 404) {
    throw new Error("recorded branch-protection no longer starts with a 404");
  }

  const steps = [];
  steps.push(recordedAt(getOrganization, getOrganization.path));

  const membersPath = `${org}/members?per_page=${PER_PAGE}`;
  if (variant === "secondary-rate-limit") steps.push(mockSecondaryRateLimit(composer, membersPath));
  steps.push(composed(membersPath, 200, members));

  for (const { login } of members) {
    steps.push(composed(`${org}/memberships/${encodeURIComponent(login)}`, 200, membership));
  }

  const twoFactorPath = `${org}/members?filter=2fa_disabled&per_page=${PER_PAGE}`;
  steps.push(
    variant === "no-scope"
      ? mockResourceNotAccessible(composer, twoFactorPath)
      : composed(twoFactorPath, 200, members),
  );

  steps.push(composed(`${org}/invitations?per_page=${PER_PAGE}`, 200, invitations));

  steps.push(composed(`${org}/teams?per_page=${PER_PAGE}`, 200, teams));
  for (const { slug } of teams) {
    steps.push(composed(`${org}/teams/${encodeURIComponent(slug)}/members?per_page=${PER_PAGE}`, 200, teamMembers));
  }

  steps.push(composed(`${org}/repos?per_page=${PER_PAGE}`, 200, repos));
  for (const { full_name: fullName, default_branch: branch } of repos) {
    steps.push(composed(`/repos/${fullName}/collaborators?affiliation=all&per_page=${PER_PAGE}`, 200, collaborators));
    const protectionPath = `/repos/${fullName}/branches/${encodeURIComponent(branch)}/protection`;
    steps.push(
      variant === "unprotected"
        ? recordedAt(branchNotProtected, protectionPath)
        : composed(protectionPath, 200, protection),
    );
  }
  return steps;
}

// The GitHub executor's removal of a repository collaborator: the recorded
// listing (which has octokit-fixture-user-b) and the recorded DELETE. The
// executor lists direct collaborators only, so that a member with access
// through a team is never removed by mistake; the recording listed without
// that filter, and its answer is served to the filtered request, which for
// this repository (no team access) is the same list.
function removeCollaboratorSteps(composer, recorded) {
  const [, , , listing, removal] = recorded["add-and-remove-repository-collaborator"];
  const collaborators =
    "/repos/octokit-fixture-org/add-and-remove-repository-collaborator/collaborators";
  return [
    composer.recordedAt(listing, `${collaborators}?affiliation=direct&per_page=100`),
    composer.recordedAt(removal, removal.path),
  ];
}

// Where a connector configured with `comments_since` starts reading
// repository comments, and where the published example's one comment moves
// it on (its updated_at).
export const COMMENTS_SINCE = "2011-01-01T00:00:00Z";
export const COMMENTS_CURSOR = "2011-04-14T16:00:49Z";

// A scan that also reads each repository's comments since a time.
function commentSteps(composer, since) {
  const repos = readOpenApiExample("repos/list-for-org");
  const comments = readOpenApiExample("issues/list-comments-for-repo");
  if (comments.at(-1)?.updated_at !== COMMENTS_CURSOR) {
    throw new Error("the published comment example no longer ends at COMMENTS_CURSOR");
  }
  return repos.map(({ full_name: fullName }) =>
    composer.composed(
      `/repos/${fullName}/issues/comments?since=${since}&per_page=${PER_PAGE}`,
      200,
      comments,
    ),
  );
}

export function composeScenarios(recorded = loadRecordedScenarios()) {
  const composer = makeComposer(recorded);
  const scan = (variant) => composer.build(orgScanSteps(composer, recorded, variant));
  // Two syncs in a row: the second resumes reading comments at the cursor
  // the first returned.
  const scanWithComments = (since) => [
    ...orgScanSteps(composer, recorded, "protected"),
    ...commentSteps(composer, since),
  ];
  return {
    "org-scan": scan("protected"),
    "org-scan-unprotected": scan("unprotected"),
    "org-scan-secondary-rate-limit": scan("secondary-rate-limit"),
    "org-scan-no-scope": scan("no-scope"),
    "org-scan-comments-twice": composer.build([
      ...scanWithComments(COMMENTS_SINCE),
      ...scanWithComments(COMMENTS_CURSOR),
    ]),
    "remove-repository-collaborator": composer.build(removeCollaboratorSteps(composer, recorded)),
  };
}

export function allScenarios() {
  const recorded = loadRecordedScenarios();
  const composed = composeScenarios(recorded);
  for (const name of Object.keys(composed)) {
    if (name in recorded) throw new Error(`composed scenario ${name} would hide a recorded one`);
  }
  return { ...recorded, ...composed };
}
