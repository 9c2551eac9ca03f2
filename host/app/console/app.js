// Switchboard: sign-in, the address-driven views, and live updates.

import { ApiError, follow, get, token } from './api.js';
import { h, fill } from './dom.js';
import * as findings from './findings.js';
import * as proposals from './proposals.js';
import * as pages from './pages.js';

const ROUTES = [
  [/^\/findings$/, findings.list],
  [/^\/finding\/([^/]+)$/, findings.one],
  [/^\/campaigns$/, pages.campaigns],
  [/^\/campaign\/([^/]+)$/, pages.campaign],
  [/^\/proposals$/, proposals.list],
  [/^\/proposal\/([^/]+)$/, proposals.one],
  [/^\/plugins$/, pages.plugins],
  [/^\/entities$/, pages.entities],
  [/^\/entity\/([^/]+)\/([^/]+)$/, pages.entity],
];

const $ = (id) => document.getElementById(id);
let me = null;
let current = null;
let stopFollowing = null;
let stale = false;

let quiet = null;
function announce(text) {
  // Cleared first so that the same words twice are read twice, and again
  // after a while so the notice does not linger on screen.
  clearTimeout(quiet);
  fill($('live'), '');
  setTimeout(() => fill($('live'), text), 50);
  quiet = setTimeout(() => fill($('live'), ''), 6000);
}

function address() {
  const hash = location.hash.replace(/^#/, '') || '/findings';
  const [path, query = ''] = hash.split('?');
  return { path, query: new URLSearchParams(query) };
}

async function render({ keepFocus = false } = {}) {
  const { path, query } = address();
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  const view = $('view');
  for (const a of document.querySelectorAll('#nav a')) {
    const here = path.startsWith(a.dataset.prefix);
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (!route) {
    fill(view, h('h1', {}, 'Not found'), h('p', {}, 'No such page in the console.'));
    return;
  }
  const params = route[0].exec(path).slice(1).map(decodeURIComponent);
  const ctx = { params, query, role: me.role, announce, rerender: () => render({ keepFocus: true }) };
  const asked = location.hash;
  view.setAttribute('aria-busy', 'true');
  try {
    const shown = await route[1](ctx);
    // The reader moved on (or changed a filter) while this was fetched:
    // what was fetched answers an address no longer shown.
    if (location.hash !== asked) {
      if (location.hash.split('?')[0] === asked.split('?')[0]) await render({ keepFocus: true });
      return;
    }
    current = shown;
    stale = false;
    const scroll = window.scrollY;
    const active = view.contains(document.activeElement) ? document.activeElement : null;
    fill(view, current.node);
    document.title = `${current.title} · Switchboard`;
    if (keepFocus) {
      window.scrollTo(0, scroll);
      // A live update can land just after a new page moved focus to its
      // heading; the heading it replaces takes the focus with it.
      if (active?.id) document.getElementById(active.id)?.focus({ preventScroll: true });
      else if (active?.tagName === 'H1') focusHeading();
    } else {
      // A new page: move focus to its heading, as a screen reader user
      // expects after following a link.
      focusHeading();
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      signOut('The token was refused; sign in again.');
      return;
    }
    fill(view, h('h1', {}, 'Cannot show this page'), h('p', { role: 'alert' }, e.message));
  } finally {
    view.removeAttribute('aria-busy');
  }
}

function focusHeading() {
  const heading = $('view').querySelector('h1');
  heading?.setAttribute('tabindex', '-1');
  heading?.focus({ preventScroll: true });
}

/** A change the server announced: fetch again now, unless the reader is typing. */
function changed(topic) {
  if (!current || !(topic === 'all' || current.topics.includes(topic))) return;
  const active = document.activeElement;
  const typing = active && $('view').contains(active) && (active.tagName === 'TEXTAREA' || active.tagName === 'INPUT') && active.value;
  if (typing) {
    stale = true;
    fill($('live'), h('span', {}, 'This page has changed. ', h('button', { type: 'button', onclick: () => render({ keepFocus: true }) }, 'Show the changes')));
    return;
  }
  render({ keepFocus: true }).then(() => announce(`Updated: ${topic}.`));
}

function liveState(state) {
  const text = { live: 'Live', reconnecting: 'Reconnecting…', refused: 'Live updates refused' }[state];
  const el = $('live-state');
  fill(el, text);
  el.dataset.state = state;
  if (state === 'live' && stale) render({ keepFocus: true });
}

async function signIn(secret) {
  token.set(secret);
  try {
    me = await get('/whoami');
  } catch (e) {
    token.clear();
    throw e;
  }
  $('sign-in').hidden = true;
  $('nav').hidden = false;
  $('who').hidden = false;
  fill($('who-name'), `${me.name} (${me.role})`);
  stopFollowing = follow(changed, liveState);
  await render();
}

function signOut(why = '') {
  stopFollowing?.();
  stopFollowing = null;
  token.clear();
  me = null;
  current = null;
  $('nav').hidden = true;
  $('who').hidden = true;
  fill($('view'));
  $('sign-in').hidden = false;
  fill($('sign-in-error'), why);
  $('token').value = '';
  $('token').focus();
}

function start() {
  $('sign-in-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const secret = $('token').value.trim();
    if (!secret) {
      fill($('sign-in-error'), 'Enter an API token.');
      return;
    }
    fill($('sign-in-error'), '');
    try {
      await signIn(secret);
    } catch (err) {
      fill($('sign-in-error'), err.status === 401 ? 'This token is not known to org-mesh.' : err.message);
      $('token').focus();
    }
  });
  $('sign-out').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', () => me && render());
  const saved = token.get();
  if (saved) {
    signIn(saved).catch(() => signOut('Sign in again.'));
  } else {
    signOut();
  }
}

start();
