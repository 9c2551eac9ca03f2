// An operator's session in Switchboard, in headless Chromium: sign in,
// filter findings, open one, approve a proposal and see dry run hold it,
// watch a viewer's page follow live and refuse the viewer, read a narrative
// campaign, an entity page and the plugins page, and try a failed fix again
// on a second service that runs fixes. Started by
// host/cli/tests/console.rs, which passes the service and what it prepared
// in the environment; exits non-zero, naming the failed step, on any
// failure. Screenshots of each step go to $SCREENSHOTS.
//
// The browser reaches nothing but the service under test: every other
// request is aborted and every host name but 127.0.0.1 resolves to nothing.

import { chromium } from 'playwright-core';
import path from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; host/cli/tests/console.rs sets it`);
  return value;
};
const base = env('CONSOLE_URL');
const running = env('RUNNING_URL');
const shots = env('SCREENSHOTS');
const timeout = 15000;

let step = 'start';
const problems = [];
const pages = [];
function check(ok, what) {
  if (!ok) throw new Error(`${step}: ${what}`);
}

const browser = await chromium.launch({
  executablePath: env('CHROMIUM'),
  headless: true,
  // Chromium's own sandbox cannot start as root, as CI runs.
  args: [
    ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});

async function session(name, origin = base) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.route('**/*', (route) => (
    route.request().url().startsWith(origin) ? route.continue() : route.abort('blockedbyclient')));
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  // A script error or a refused resource (a policy violation shows here) fails the run.
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => {
    // Refusals the session provokes on purpose (a wrong token, a viewer's
    // approval) are logged by Chromium too; anything else is a problem.
    const provoked = /Failed to load resource: the server responded with a status of 40[13]/.test(m.text());
    if (m.type() === 'error' && !provoked) problems.push(`${name}: console error: ${m.text()}`);
  });
  pages.push([name, page]);
  return page;
}

let shot = 0;
async function screenshot(page, name) {
  shot += 1;
  const file = path.join(shots, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

async function signIn(page, token, origin = base) {
  await page.goto(`${origin}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#findings-table table').waitFor();
}

const rows = (page) => page.locator('#findings-table tbody tr');

try {
  const approver = await session('approver');

  step = 'a wrong token is refused';
  await approver.goto(`${base}/`);
  await approver.locator('#token:focus').waitFor();
  // By keyboard alone: the token field has focus, Enter signs in.
  await approver.keyboard.type('not-a-token');
  await approver.keyboard.press('Enter');
  await approver.getByText('This token is not known to org-mesh.').waitFor();
  await screenshot(approver, 'sign-in-refused');

  step = 'sign in as approver';
  await signIn(approver, env('APPROVER_TOKEN'));
  await approver.locator('#live-state[data-state="live"]').waitFor();
  check((await approver.locator('#who-name').textContent()).includes('approver'), 'the role is shown');
  const all = await rows(approver).count();
  check(all >= 4, `at least four findings, saw ${all}`);
  await screenshot(approver, 'findings');

  step = 'filter findings by severity';
  await approver.getByLabel('Severity at least').selectOption('high');
  const shown = await rows(approver).locator('.sev').allTextContents();
  check(shown.length > 0 && shown.length < all, `some but not all findings are high or worse: ${shown}`);
  check(shown.every((s) => s === 'high' || s === 'critical'), `only high and critical: ${shown}`);
  check(approver.url().includes('severity=high'), `the filter is in the address: ${approver.url()}`);
  check((await approver.locator('#findings-count').textContent()).startsWith(`${shown.length} of ${all}`), 'the count says so');
  await screenshot(approver, 'findings-high');

  step = 'filter by rule and state, then clear';
  await approver.getByLabel('Severity at least').selectOption('');
  await approver.getByLabel('State').selectOption('fix awaiting approval');
  const states = await rows(approver).locator('td:nth-child(6)').allTextContents();
  check(states.length > 0 && states.length < all && states.every((x) => x === 'fix awaiting approval'),
    `only findings whose fix awaits approval: ${states}`);
  await approver.getByLabel('State').selectOption('');
  await approver.getByLabel('Rule').selectOption('account-without-mfa');

  step = 'open a finding and read its evidence';
  await rows(approver).first().locator('td:nth-child(2) a').click();
  await approver.getByRole('heading', { name: 'Evidence' }).waitFor();
  const evidence = approver.locator('section[aria-label="Evidence"] tbody tr');
  check(await evidence.count() > 0, 'the finding has evidence');
  check((await evidence.first().locator('.source').textContent()) === 'github', 'each fact names its source');
  check(await evidence.first().locator('time[datetime]').count() >= 2, 'each fact has its first and last time');
  // The page moves focus once it has rendered, which a live update can
  // delay by a moment; waiting for it keeps the check about where focus
  // ends up, not about timing.
  const focused = await approver
    .waitForFunction(() => document.activeElement?.tagName === 'H1', null, { timeout: 5000 })
    .then(() => true, () => false);
  check(focused, 'focus moves to the new page');
  await screenshot(approver, 'finding');

  step = 'a viewer follows the proposal';
  const viewer = await session('viewer');
  await signIn(viewer, env('VIEWER_TOKEN'));
  const proposal = env('PROPOSAL');
  await viewer.getByRole('link', { name: 'Proposals' }).click();
  await viewer.getByRole('link', { name: proposal }).click();
  await viewer.locator('#proposal-state').getByText('awaiting approval').waitFor();
  await viewer.locator('#live-state[data-state="live"]').waitFor();
  check(await viewer.getByRole('button', { name: 'Approve' }).count() === 0, 'a viewer has no approve button');
  check(await viewer.locator('#cannot-decide').isVisible(), 'a viewer is told why');
  const refused = await viewer.evaluate(async (id) => {
    const r = await fetch(`/api/v1/proposals/${id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sessionStorage.getItem('org-mesh.token')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'trying anyway' }),
    });
    return r.status;
  }, proposal);
  check(refused === 403, `the API refuses a viewer's approval, answered ${refused}`);
  await screenshot(viewer, 'viewer-cannot-approve');

  step = 'approve the proposal and see dry run hold it';
  await approver.goto(`${base}/#/proposal/${proposal}`);
  await approver.getByRole('heading', { name: 'Plan' }).waitFor();
  check(await approver.locator('.call').count() > 0, 'the plan lists its calls');
  check(await approver.locator('#dry-run').isVisible(), 'dry run is said');
  await approver.getByRole('button', { name: 'Approve' }).click();
  await approver.getByText('Give a reason first.').waitFor();
  await approver.getByLabel('Reason (kept in the trail)').fill('Checked with the repository owner');
  await approver.getByRole('button', { name: 'Approve' }).click();
  await approver.locator('#proposal-state').getByText('approved', { exact: true }).waitFor();
  check((await approver.locator('#proposal-latest').textContent()).includes('actions.dry_run is on'),
    'the trail says dry run holds the fix');
  const trail = await approver.locator('section[aria-label="Audit trail"] tbody tr').allTextContents();
  check(trail.some((r) => r.includes('security-lead') && r.includes('Checked with the repository owner')), `the approval is in the trail: ${trail}`);
  await screenshot(approver, 'approved-dry-run');

  step = 'the viewer page follows without a reload';
  await viewer.locator('#proposal-state').getByText('approved', { exact: true }).waitFor();
  await screenshot(viewer, 'viewer-live-update');

  step = 'read a narrative campaign';
  await viewer.getByRole('link', { name: 'Narrative' }).click();
  await viewer.locator(`a[href="#/campaign/${env('CAMPAIGN')}"]`).click();
  await viewer.getByRole('heading', { name: /Sample messages/ }).waitFor();
  const accounts = await viewer.locator('section[aria-label="Accounts"] tbody').textContent();
  for (const who of ['rill-ostrander', 'vessa-quill', 'taddeo-brix', 'helper-dev']) {
    check(accounts.includes(who), `${who} is among the accounts: ${accounts}`);
  }
  check((await viewer.locator('section[aria-label="Targets"]').textContent()).includes('Codertocat/Hello-World'), 'the target repository is shown');
  check(await viewer.locator('.message').count() === 4, 'four sample messages');
  const bodies = await viewer.locator('.message .body').allTextContents();
  check(bodies.some((b) => b.includes('<img src=x id=injected')), 'markup in a message is shown as text');
  check(await viewer.locator('#injected').count() === 0, 'markup in a message never becomes an element');
  check(await viewer.title() !== 'pwned', 'no handler from a message ran');
  check(await viewer.locator('.timeline li').count() > 4, 'the timeline holds messages and evidence');
  await screenshot(viewer, 'campaign');

  step = 'an entity page';
  await viewer.locator('section[aria-label="Accounts"] a', { hasText: 'helper-dev' }).click();
  await viewer.getByRole('heading', { name: 'History' }).waitFor();
  check((await viewer.locator('section[aria-label="Access"]').textContent()).includes('write'), 'the access granted is shown');
  await screenshot(viewer, 'entity');

  step = 'plugins and policies';
  await viewer.getByRole('link', { name: 'Plugins & policies' }).click();
  await viewer.getByRole('heading', { name: 'Reloads' }).waitFor();
  check((await viewer.locator('section[aria-label="Plugins"]').textContent()).includes('github-connector'), 'loaded plugins are listed');
  await screenshot(viewer, 'plugins');

  step = 'try a failed fix again';
  const retrier = await session('retrier', running);
  await signIn(retrier, env('APPROVER_TOKEN'), running);
  await retrier.goto(`${running}/#/proposal/${env('FAILED_PROPOSAL')}`);
  await retrier.locator('#proposal-state').getByText('failed', { exact: true }).waitFor();
  check(await retrier.getByRole('button', { name: 'Approve' }).count() === 0, 'a failed fix is not approved again');
  await retrier.getByRole('button', { name: 'Try again' }).click();
  await retrier.getByText('Give a reason first.').waitFor();
  await retrier.getByLabel('Reason (kept in the trail)').fill('GitHub answered again');
  await retrier.getByRole('button', { name: 'Try again' }).click();
  await retrier.locator('#proposal-state').getByText('awaiting approval').waitFor();
  check(await retrier.getByRole('button', { name: 'Approve' }).count() === 1, 'the new plan awaits approval');
  const retrail = await retrier.locator('section[aria-label="Audit trail"] tbody tr').allTextContents();
  check(retrail.some((r) => r.includes('security-lead') && r.includes('to be tried again: GitHub answered again')),
    `the request is in the trail: ${retrail}`);
  await screenshot(retrier, 'tried-again');

  step = 'sign out';
  await viewer.getByRole('button', { name: 'Sign out' }).click();
  await viewer.getByLabel('API token').waitFor();
  check(await viewer.evaluate(() => sessionStorage.length === 0), 'the token is forgotten');

  check(problems.length === 0, `the pages logged errors:\n${problems.join('\n')}`);
  console.log(`console session passed; screenshots in ${shots}`);
} catch (e) {
  console.error(`FAILED at "${step}": ${e.message}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
  for (const [name, page] of pages) {
    await screenshot(page, `failed-${name}`).catch(() => {});
  }
} finally {
  await browser.close();
}
