// Narrative campaigns, plugins and policies, and entity pages.

import { get } from './api.js';
import {
  h, show, plain, time, severity, badge, link, entityLink, table, facts,
  provenance, section,
} from './dom.js';

const isCampaign = (f) => Array.isArray(f.attributes?.signals);

export async function campaigns() {
  const { findings } = await get('/findings?rule=narrative-campaign');
  const all = findings.filter(isCampaign);
  return {
    title: 'Narrative',
    topics: ['findings'],
    node: h('div', {}, h('h1', {}, 'Narrative signals and campaigns'),
      table('Campaigns', ['Severity', 'Campaign', 'Risk', 'Signals', 'Participants', 'Messages', 'Last message'],
        all.map((f) => [
          severity(f.severity),
          link(`/campaign/${encodeURIComponent(f.fingerprint)}`, f.title),
          show(f.attributes.risk_score),
          f.attributes.signals.map((s) => badge(s)),
          show(f.attributes.participants?.length ?? 0),
          show(f.attributes.messages),
          time(f.attributes.last_message_at),
        ]), 'no narrative campaign is open.')),
  };
}

/** Links only to web pages: a message's URL is text someone else sent. */
function outside(url) {
  try {
    const u = new URL(url);
    if (u.protocol === 'https:' || u.protocol === 'http:') {
      return h('a', { href: u.href, rel: 'noopener noreferrer', target: '_blank' }, 'original');
    }
  } catch { /* not a URL: shown as nothing */ }
  return null;
}

function roleIn(attrs, login) {
  const has = (k) => (attrs?.[k] ?? []).includes(login);
  return [has('participants') && 'participant', has('pressed') && 'pressed', has('beneficiaries') && 'beneficiary']
    .filter(Boolean).join(', ') || 'mentioned';
}

function message(m) {
  const p = m.properties;
  return h('article', { class: 'message', 'aria-label': `Message by ${m.author ?? 'unknown'}` },
    h('header', {},
      h('strong', {}, m.author ? entityLink({ label: 'Account', key: m.author }) : 'unknown author'),
      ' · ', time(p.created_at), ' · ', p.kind ?? 'message', p.thread ? [' in ', h('code', {}, p.thread)] : null,
      p.author_association ? [' · ', badge(p.author_association)] : null,
      p.url ? [' · ', outside(p.url)] : null),
    p.title ? h('p', { class: 'title' }, p.title) : null,
    h('p', { class: 'body' }, p.body ?? ''));
}

export async function campaign(ctx) {
  const fingerprint = ctx.params[0];
  const c = await get(`/campaigns/${encodeURIComponent(fingerprint)}`);
  const f = c.finding;
  const attrs = f?.attributes ?? c.campaign.properties;
  const scores = Object.entries(attrs).filter(([k]) => k.startsWith('score_'));
  const node = h('div', {},
    h('p', { class: 'crumbs' }, link('/campaigns', 'Narrative'), ' / ', h('code', {}, fingerprint)),
    h('h1', {}, f?.title ?? c.campaign.properties.title ?? 'Campaign'),
    f ? null : h('p', { class: 'note' }, 'This campaign is no longer found; the twin keeps what it cited.'),
    facts([
      ['Severity', severity(f?.severity ?? attrs.severity)],
      ['Risk score', show(attrs.risk_score)],
      ['Signals', (attrs.signals ?? []).map((s) => badge(s))],
      scores.length && ['Signal scores', facts(scores.map(([k, v]) => [k.slice(6), show(v)]))],
      ['Privilege granted', show(attrs.privilege_granted)],
      ['Messages', [`${show(attrs.messages)} in ${show(attrs.threads)} thread(s), from `, time(attrs.first_message_at), ' to ', time(attrs.last_message_at)]],
      f && ['Finding', link(`/finding/${encodeURIComponent(fingerprint)}`, 'evidence and decision')],
    ]),
    section('Accounts', table('Accounts involved', ['Account', 'Part', 'Source'],
      c.accounts.map((a) => [entityLink(a), roleIn(attrs, a.properties.login ?? a.key.replace(/^[^:]*:/, '')), provenance(a.provenance)]))),
    section('Targets', table('What it targets', ['Target', 'Source'],
      c.targets.map((t) => [entityLink(t), provenance(t.provenance)]))),
    section('Timeline', h('ol', { class: 'timeline' }, c.timeline.map((t) => h('li', {},
      time(t.at), ' ', badge(t.what), ' ',
      t.by ? [entityLink({ label: 'Account', key: t.by }), ': '] : null,
      t.text ?? t.change ?? '',
      t.source ? h('span', { class: 'source' }, ` (${t.source})`) : null)))),
    section(`Sample messages (${c.messages.length} of ${c.messages_total})`,
      h('p', { class: 'note' }, 'Text written by the accounts above, shown as plain text.'),
      c.messages.map(message)),
  );
  return { title: 'Campaign', topics: ['findings'], node };
}

export async function plugins() {
  const [p, pol, r] = await Promise.all([get('/plugins'), get('/policies'), get('/reloads')]);
  const failures = (f) => Object.entries(f ?? {}).map(([k, n]) => `${k}: ${n}`).join(', ') || 'none';
  const node = h('div', {}, h('h1', {}, 'Plugins and policies'),
    section('Plugins', table('Loaded plugin instances', ['Instance', 'Plugin', 'Kind', 'Version', 'Digest', 'Calls', 'Failures', 'Quarantine'],
      p.plugins.map((x) => [
        h('strong', {}, x.instance), x.plugin, x.kind, x.version, h('code', { title: x.digest }, x.digest.slice(0, 12)),
        show(x.calls), failures(x.failures),
        x.quarantined_for_secs == null ? 'no' : badge(`quarantined ${x.quarantined_for_secs}s more`, 'bad'),
      ])),
      p.not_loaded.length ? table('Not loaded', ['Why'], p.not_loaded.map((s) => [s])) : null),
    section('Policies', facts([
      ['Loaded', show(pol.loaded)],
      ['Version', show(pol.version)],
      pol.dir && ['Folder', pol.dir],
      pol.files && ['Files', h('ul', {}, pol.files.map((x) => h('li', {}, x)))],
      pol.tests && ['Tests', `${pol.tests.length} passing`],
      pol.shadow && ['Shadowing', `${pol.shadow.version}, ${pol.shadow.remaining_secs}s left`],
    ])),
    section('Reloads', table('Last reload of each policy folder and plugin', ['When', 'Kind', 'Target', 'Outcome', 'Serving', 'Tried', 'Problem'],
      r.reloads.map((x) => [time(x.at), x.kind, x.target, badge(show(x.outcome), x.outcome === 'rejected' ? 'bad' : ''),
        show(x.serving), show(x.candidate), x.problem ?? '']), 'no reload since start.')));
  return { title: 'Plugins and policies', topics: ['plugins', 'reloads'], node };
}

const LABELS = ['Person', 'Account', 'Group', 'Organisation', 'Repository', 'Campaign', 'Proposal'];

export async function entities(ctx) {
  const label = ctx.query.get('label') || 'Person';
  const { entities: all } = await get(`/entities?label=${encodeURIComponent(label)}`);
  const nav = h('nav', { 'aria-label': 'Entity kinds', class: 'tabs' },
    LABELS.map((l) => h('a', { href: `#/entities?label=${l}`, 'aria-current': l === label ? 'page' : false }, l)));
  return {
    title: 'Entities',
    topics: ['findings'],
    node: h('div', {}, h('h1', {}, 'Entities'), nav,
      table(label, ['Entity', 'Name', 'Source'], all.map((e) => [
        entityLink(e.node),
        show(plain(e.node.properties.display_name ?? e.node.properties.name ?? e.node.properties.login ?? e.node.properties.title)),
        provenance(e.provenance),
      ]))),
  };
}

/** The other end of an edge of `self`, and which way it points. */
function other(self, edge) {
  const e = edge.edge.edge;
  const out = e.from.label === self.label && e.from.key === self.key;
  return { out, node: out ? e.to : e.from, kind: e.kind, properties: e.properties, provenance: edge.edge.provenance };
}

function changes(entry) {
  const before = entry.before ?? {};
  const after = entry.after ?? {};
  return [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((k) => `${k}: ${show(before[k])} → ${show(after[k])}`).join('; ');
}

function subjectOf(entityId) {
  if (entityId?.node) return `${entityId.node.label} ${entityId.node.key}`;
  if (entityId?.edge) return `${entityId.edge.kind} ${entityId.edge.from.key} → ${entityId.edge.to.key}`;
  return '';
}

export async function entity(ctx) {
  const [label, key] = ctx.params;
  const self = { label, key };
  const e = await get(`/entities/${encodeURIComponent(label)}/${encodeURIComponent(key)}`);
  const near = e.edges.map((x) => other(self, x));
  // A person's accounts carry the groups and access; an account stands for itself.
  const accounts = label === 'Person'
    ? near.filter((n) => n.kind === 'IDENTITY_OF' && n.node.label === 'Account').map((n) => n.node)
    : label === 'Account' ? [self] : [];
  const loaded = await Promise.all(accounts.map(async (a) => (
    a === self ? { ref: a, e } : { ref: a, e: await get(`/entities/Account/${encodeURIComponent(a.key)}`) })));
  const reach = loaded.flatMap(({ ref, e: ae }) => ae.edges.map((x) => ({ via: ref, ...other(ref, x) })).filter((n) => n.out));
  const groups = reach.filter((n) => n.kind === 'MEMBER_OF');
  const access = reach.filter((n) => n.kind === 'HAS_PERMISSION' || n.kind === 'OWNS');
  const history = loaded.filter(({ ref }) => ref !== self).flatMap(({ e: ae }) => ae.history).concat(e.history)
    .sort((a, b) => (a.at < b.at ? 1 : -1));
  const props = e.entity.node.properties;
  const person = label === 'Account' ? near.find((n) => n.kind === 'IDENTITY_OF') : null;
  const node = h('div', {},
    h('p', { class: 'crumbs' }, link(`/entities?label=${encodeURIComponent(label)}`, label), ' / ', h('code', {}, key)),
    h('h1', {}, `${label} ${show(props.display_name ?? props.name ?? props.login ?? key)}`),
    facts([['Source', provenance(e.entity.provenance)], person && ['Person', entityLink(person.node)],
      ...Object.entries(props).map(([k, v]) => [k, show(v)])]),
    label === 'Person' ? section('Accounts', table('Accounts', ['Account', 'Source'],
      accounts.map((a) => [entityLink(a), provenance(loaded.find((l) => l.ref === a)?.e.entity.provenance)]))) : null,
    accounts.length ? section('Groups', table('Groups and organisations', ['Group', 'Role', 'Via', 'Source'],
      groups.map((g) => [entityLink(g.node), show(g.properties.role), g.via.key, provenance(g.provenance)]))) : null,
    accounts.length ? section('Access', table('Access', ['To', 'Permission', 'Via', 'Source'],
      access.map((g) => [entityLink(g.node), g.kind === 'OWNS' ? 'owner' : show(g.properties.role ?? g.properties.permission), g.via.key, provenance(g.provenance)]))) : null,
    section('Relationships', table('Every edge', ['Edge', 'Other end', 'Properties', 'Source'],
      near.map((n) => [n.out ? `${n.kind} →` : `← ${n.kind}`, entityLink(n.node),
        Object.entries(n.properties ?? {}).map(([k, v]) => `${k}: ${show(v)}`).join(', '), provenance(n.provenance)]))),
    section('History', table('Changes, newest first', ['When', 'Source', 'What', 'Change', 'Details'],
      history.map((x) => [time(x.at), x.source, subjectOf(x.entity), badge(show(x.kind)), changes(x)]))));
  return { title: `${label} ${key}`, topics: ['findings', 'proposals'], node };
}

