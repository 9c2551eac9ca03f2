// Copies the few response examples that the composed replay scenarios need out
// of GitHub's published OpenAPI description (npm package @octokit/openapi).
// The package unpacks to hundreds of megabytes, so it is installed outside the
// repository once and only the example values are kept: each value as
// published, only re-indented with two spaces.
//
// usage: node conformance/replay/extract-openapi-examples.mjs <unpacked @octokit/openapi folder>

import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const PACKAGE = "@octokit/openapi";
export const PINNED_VERSION = "23.0.2";

// The non-dereferenced description keeps examples under components.examples,
// which is what lets us name each one we take.
const DESCRIPTION_FILE = "generated/api.github.com.json";

// operationId -> key of the 200 application/json example to take. The key is
// explicit so that a new alternative example upstream cannot silently change
// which body we serve.
export const WANTED = {
  "orgs/list-members": "default",
  "orgs/get-membership-for-user":
    "response-if-user-has-an-active-admin-membership-with-organization",
  "orgs/list-pending-invitations": "default",
  "teams/list": "default",
  "teams/list-members-in-org": "default",
  "repos/list-for-org": "default",
  "repos/list-collaborators": "default",
  "repos/get-branch-protection": "default",
  "issues/list-comments-for-repo": "default",
};

const here = dirname(fileURLToPath(import.meta.url));
export const OUT_DIR = resolve(here, "../data/github-openapi");

export function fileNameFor(operationId) {
  return operationId.replaceAll("/", "__") + ".json";
}

function fail(message) {
  console.error(`extract-openapi-examples: ${message}`);
  process.exit(1);
}

function indexOperations(description) {
  const byId = new Map();
  for (const [path, item] of Object.entries(description.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (operation && typeof operation === "object" && operation.operationId) {
        byId.set(operation.operationId, { method, path, operation });
      }
    }
  }
  return byId;
}

function resolveExample(description, example) {
  if (!example.$ref) return { name: null, example };
  const prefix = "#/components/examples/";
  if (!example.$ref.startsWith(prefix)) fail(`unexpected $ref ${example.$ref}`);
  const name = example.$ref.slice(prefix.length);
  const found = description.components.examples[name];
  if (!found) fail(`components.examples has no ${name}`);
  return { name, example: found };
}

function main() {
  const [packageDir] = process.argv.slice(2);
  if (!packageDir) fail("give the path of an unpacked @octokit/openapi package");

  const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
  if (manifest.name !== PACKAGE) fail(`${packageDir} holds ${manifest.name}, not ${PACKAGE}`);
  if (manifest.version !== PINNED_VERSION) {
    fail(`found ${PACKAGE}@${manifest.version}; this script is pinned to ${PINNED_VERSION}`);
  }

  const description = JSON.parse(readFileSync(join(packageDir, DESCRIPTION_FILE), "utf8"));
  if (!description.components?.examples) fail(`${DESCRIPTION_FILE} has no components.examples`);
  const operations = indexOperations(description);

  // Start from an empty folder so that an example dropped from WANTED does not linger.
  rmSync(OUT_DIR, { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });

  const rows = [];
  for (const [operationId, exampleKey] of Object.entries(WANTED)) {
    const entry = operations.get(operationId);
    if (!entry) fail(`no operation ${operationId}`);
    const examples = entry.operation.responses?.["200"]?.content?.["application/json"]?.examples;
    if (!examples?.[exampleKey]) fail(`${operationId} has no 200 example "${exampleKey}"`);
    const { name, example } = resolveExample(description, examples[exampleKey]);
    if (!("value" in example)) fail(`${operationId} example "${exampleKey}" has no value`);
    writeFileSync(join(OUT_DIR, fileNameFor(operationId)), JSON.stringify(example.value, null, 2) + "\n");
    rows.push({ operationId, method: entry.method.toUpperCase(), path: entry.path, name: name ?? exampleKey });
  }

  const licence = readdirSync(packageDir).find((f) => /^licen[cs]e(\.md|\.txt)?$/i.test(f));
  if (!licence) fail(`no licence file in ${packageDir}`);
  copyFileSync(join(packageDir, licence), join(OUT_DIR, "LICENSE"));

  writeFileSync(join(OUT_DIR, "README.md"), readme(rows));
  console.log(`wrote ${rows.length} examples, LICENSE and README.md to ${OUT_DIR}`);
}

function readme(rows) {
  const table = rows
    .map((r) => `| \`${fileNameFor(r.operationId)}\` | \`${r.operationId}\` | \`${r.method} ${r.path}\` | \`${r.name}\` |`)
    .join("\n");
  return `# GitHub REST response examples

Taken unchanged (the example's \`value\`) from GitHub's official OpenAPI description as published
in the npm package \`${PACKAGE}\`, version **${PINNED_VERSION}**, file \`${DESCRIPTION_FILE}\`
(\`components.examples\`). Licence: MIT, see \`LICENSE\` (copied verbatim from the package).

The composed replay scenarios in \`conformance/replay/scenarios.mjs\` serve these bodies.

| file | operationId | request | components.examples |
|---|---|---|---|
${table}

## Regenerate

Install the package outside the repository (it unpacks to about 385 MB), then run the script from
the repository root:

\`\`\`sh
npm install --prefix /tmp/openapi-x ${PACKAGE}@${PINNED_VERSION}
node conformance/replay/extract-openapi-examples.mjs /tmp/openapi-x/node_modules/${PACKAGE}
\`\`\`
`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
