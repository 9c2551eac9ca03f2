// Collects the human-written texts (issue and pull request bodies, comments,
// reviews, commit comments and commit messages) from the webhook payload
// examples GitHub publishes through the npm package @octokit/webhooks-examples,
// so that the narrative corpus has real, benign text next to the hand-written
// scenarios. Each text keeps its author, the author's association with the
// repository, its time, its repository and the event it came from.
//
// The package is pinned and installed by .ci/setup under conformance/replay.
//
// usage: node conformance/narrative/extract-webhook-comments.mjs [<package folder>]

import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const PACKAGE = "@octokit/webhooks-examples";
export const PINNED_VERSION = "7.6.1";

const here = dirname(fileURLToPath(import.meta.url));
const DEFAULT_PACKAGE_DIR = resolve(here, "../replay/node_modules", PACKAGE);
export const OUT_DIR = resolve(here, "webhooks-examples");
const OUT_FILE = "comments.json";

function fail(message) {
  console.error(`extract-webhook-comments: ${message}`);
  process.exit(1);
}

// The same example appears under several actions (opened, labeled, edited,
// ...) and again in every GHES folder with other times; a text by one author
// in one event counts once, or a near-duplicate detector would see the
// package's repetition as a campaign.
function identity(r) {
  return JSON.stringify([r.event, r.kind, r.repository, r.author, r.body]);
}

function text(value) {
  return typeof value === "string" && value.trim() !== "" ? value : null;
}

// One function per event: the payload paths differ, and an event whose
// shape changes upstream should fail loudly rather than yield nothing.
const EXTRACTORS = {
  issues: (p) => [
    {
      kind: "issue",
      thread: p.issue.number,
      user: p.issue.user,
      author_association: p.issue.author_association,
      created_at: p.issue.created_at,
      body: p.issue.body,
    },
  ],
  issue_comment: (p) => [
    {
      kind: p.issue.pull_request ? "pull-request-comment" : "issue-comment",
      thread: p.issue.number,
      user: p.comment.user,
      author_association: p.comment.author_association,
      created_at: p.comment.created_at,
      body: p.comment.body,
    },
  ],
  pull_request: (p) => [
    {
      kind: "pull-request",
      thread: p.pull_request.number,
      user: p.pull_request.user,
      author_association: p.pull_request.author_association,
      created_at: p.pull_request.created_at,
      body: p.pull_request.body,
    },
  ],
  pull_request_review: (p) => [
    {
      kind: "review",
      thread: p.pull_request.number,
      user: p.review.user,
      author_association: p.review.author_association,
      created_at: p.review.submitted_at,
      body: p.review.body,
    },
  ],
  pull_request_review_comment: (p) => [
    {
      kind: "review-comment",
      thread: p.pull_request.number,
      user: p.comment.user,
      author_association: p.comment.author_association,
      created_at: p.comment.created_at,
      body: p.comment.body,
    },
  ],
  commit_comment: (p) => [
    {
      kind: "commit-comment",
      thread: p.comment.commit_id,
      user: p.comment.user,
      author_association: p.comment.author_association,
      created_at: p.comment.created_at,
      body: p.comment.body,
    },
  ],
  // A push carries commit messages, not comments, and no association: the
  // committer's GitHub login is the commit author's username when GitHub
  // could match the address.
  push: (p) =>
    p.commits.map((c) => ({
      kind: "commit",
      thread: p.ref.replace(/^refs\/heads\//, ""),
      user: { login: c.author?.username ?? null },
      author_association: null,
      created_at: c.timestamp,
      body: c.message,
    })),
};

function main() {
  const packageDir = resolve(process.argv[2] ?? DEFAULT_PACKAGE_DIR);
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
  } catch (e) {
    fail(`${packageDir}: ${e.message}; run .ci/setup to install the pinned npm packages`);
  }
  if (manifest.name !== PACKAGE) fail(`${packageDir} holds ${manifest.name}, not ${PACKAGE}`);
  if (manifest.version !== PINNED_VERSION) {
    fail(`found ${PACKAGE}@${manifest.version}; this script is pinned to ${PINNED_VERSION}`);
  }
  if (manifest.license !== "MIT") fail(`the package now declares licence ${manifest.license}; review LICENSE`);

  // api.github.com first, then the GHES folders in name order, so that the
  // first occurrence of a text is the one from the public service.
  const folders = readdirSync(packageDir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort((a, b) => (a === "api.github.com" ? -1 : b === "api.github.com" ? 1 : a.localeCompare(b)));

  const seen = new Set();
  const records = [];
  for (const folder of folders) {
    const events = JSON.parse(readFileSync(join(packageDir, folder, "index.json"), "utf8"));
    for (const event of events) {
      const extract = EXTRACTORS[event.name];
      if (!extract) continue;
      event.examples.forEach((payload, index) => {
        for (const found of extract(payload)) {
          const body = text(found.body);
          if (!body) continue;
          const record = {
            event: event.name,
            action: payload.action ?? null,
            kind: found.kind,
            repository: payload.repository.full_name,
            thread: found.thread,
            author: found.user?.login ?? null,
            author_association: found.author_association ?? null,
            created_at: found.created_at,
            body,
            source: `${folder}/index.json ${event.name} example ${index}`,
          };
          if (!record.created_at) fail(`${record.source}: no time for a ${found.kind}`);
          const id = identity(record);
          if (seen.has(id)) continue;
          seen.add(id);
          records.push(record);
        }
      });
    }
  }
  // Some events carry only empty bodies in this version (reviews do); say so
  // instead of failing, since that is what the package holds.
  for (const name of Object.keys(EXTRACTORS)) {
    if (!records.some((r) => r.event === name)) {
      console.log(`no non-empty text in any ${name} example`);
    }
  }

  mkdirSync(OUT_DIR, { recursive: true });
  const out = { package: PACKAGE, version: PINNED_VERSION, label: "benign", records };
  writeFileSync(join(OUT_DIR, OUT_FILE), JSON.stringify(out, null, 2) + "\n");
  writeLicence(packageDir, manifest);
  writeFileSync(join(OUT_DIR, "README.md"), readme(records));
  console.log(`wrote ${records.length} texts, LICENSE and README.md to ${OUT_DIR}`);
}

// The package's files list ships no licence file in this version; its
// package.json declares MIT. A licence file, when a later version has one,
// is copied as it is; otherwise the declared licence is recorded with the
// MIT terms so that the copied texts do not travel without them.
function writeLicence(packageDir, manifest) {
  const found = readdirSync(packageDir).find((f) => /^licen[cs]e(\.md|\.txt)?$/i.test(f));
  if (found) {
    copyFileSync(join(packageDir, found), join(OUT_DIR, "LICENSE"));
    return;
  }
  writeFileSync(join(OUT_DIR, "LICENSE"), `The texts in comments.json come from the npm package ${PACKAGE}
version ${manifest.version}, whose package.json declares the licence "${manifest.license}"
(author field: ${manifest.author}; repository field: ${manifest.repository}).
The package itself ships no licence file. The terms of the MIT License are:

${MIT_TERMS}`);
}

const MIT_TERMS = `MIT License

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`;

function readme(records) {
  const byEvent = {};
  for (const r of records) byEvent[r.event] = (byEvent[r.event] ?? 0) + 1;
  const table = Object.entries(byEvent)
    .map(([event, n]) => `| \`${event}\` | ${n} |`)
    .join("\n");
  return `# Webhook example texts (benign)

\`${OUT_FILE}\` holds the ${records.length} distinct non-empty texts (bodies, comments, reviews, commit
messages) of the issue, pull request, review, commit comment and push examples in the npm package
\`${PACKAGE}\`, version **${PINNED_VERSION}**, each with its author login, author association,
time, repository, thread and event, as published. Licence: MIT as declared by the package, see
\`LICENSE\`. Every text is labelled benign.

| event | texts |
|---|---|
${table}

Regenerate from the repository root after \`.ci/setup\`:

\`\`\`sh
node conformance/narrative/extract-webhook-comments.mjs
\`\`\`
`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
