// Findings: the filterable list and one finding with its evidence.

import { get } from './api.js';
import {
  h, fill, show, time, severity, badge, link, entityLink, table, facts, section,
} from './dom.js';

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'];
const FILTERS = ['severity', 'rule', 'source', 'state'];

/** What is being done about a finding: suppressed, its fix's state, or open. */
function stateOf(finding, proposals) {
  if (finding.decision?.suppressed) return 'suppressed';
  const fix = proposals.find((p) => p.finding === finding.fingerprint);
  return fix ? `fix ${fix.state.replaceAll('_', ' ')}` : 'open';
}

function lastSeen(finding) {
  const times = (finding.evidence ?? []).map((e) => e.provenance?.last_seen).filter(Boolean);
  return times.sort().at(-1);
}

function matches(finding, filter) {
  const rank = (s) => SEVERITIES.indexOf(s);
  return (!filter.severity || rank(finding.severity) >= rank(filter.severity))
    && (!filter.rule || finding.rule === filter.rule)
    && (!filter.source || finding.detector === filter.source)
    && (!filter.state || finding.state === filter.state);
}

function select(name, label, values, current, describe = (v) => v) {
  return h('label', {}, label,
    h('select', { name, id: `filter-${name}` },
      h('option', { value: '' }, 'any'),
      values.map((v) => h('option', { value: v, selected: v === current }, describe(v)))));
}

export async function list(ctx) {
  const [{ findings }, { proposals }] = await Promise.all([get('/findings'), get('/proposals')]);
  for (const f of findings) f.state = stateOf(f, proposals);
  const distinct = (key) => [...new Set(findings.map((f) => f[key]))].sort();
  const filter = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) ?? '']));

  const body = h('div', { id: 'findings-table' });
  const count = h('p', { class: 'count', id: 'findings-count' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter findings' },
    select('severity', 'Severity at least', SEVERITIES, filter.severity),
    select('rule', 'Rule', distinct('rule'), filter.rule),
    select('source', 'Source', distinct('detector'), filter.source),
    select('state', 'State', distinct('state'), filter.state));

  const draw = () => {
    const shown = findings.filter((f) => matches(f, filter));
    fill(count, `${shown.length} of ${findings.length} findings`);
    fill(body, table('Findings', ['Severity', 'Finding', 'Rule', 'Subject', 'Source', 'State', 'Last seen'],
      shown.map((f) => [
        severity(f.severity),
        link(`/finding/${encodeURIComponent(f.fingerprint)}`, f.title),
        h('code', {}, f.rule),
        entityLink(f.subject),
        f.detector,
        badge(f.state, f.state === 'open' ? 'warn' : ''),
        time(lastSeen(f)),
      ]), 'no finding matches these filters.'));
  };
  form.addEventListener('change', (e) => {
    filter[e.target.name] = e.target.value;
    const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v));
    // The filters are part of the address, so a filtered list can be shared
    // and survives a reload; replacing it does not re-render the page.
    history.replaceState(null, '', `#/findings${query.size ? `?${query}` : ''}`);
    draw();
    ctx.announce(count.textContent);
  });
  form.addEventListener('submit', (e) => e.preventDefault());
  draw();
  return {
    title: 'Findings',
    topics: ['findings', 'proposals'],
    node: h('div', {}, h('h1', {}, 'Findings'), form, count, body),
  };
}

export async function one(ctx) {
  const fingerprint = ctx.params[0];
  const [{ findings }, { proposals }] = await Promise.all([get('/findings'), get('/proposals')]);
  const f = findings.find((x) => x.fingerprint === fingerprint);
  if (!f) {
    return {
      title: 'Finding',
      topics: ['findings'],
      node: h('div', {}, h('h1', {}, 'Finding not found'),
        h('p', {}, `No current finding has the fingerprint ${fingerprint}; it may have been resolved.`),
        link('/findings', 'All findings')),
    };
  }
  const fixes = proposals.filter((p) => p.finding === fingerprint);
  const d = f.decision;
  const narrative = Array.isArray(f.attributes?.signals);
  const node = h('div', {},
    h('p', { class: 'crumbs' }, link('/findings', 'Findings'), ' / ', h('code', {}, f.fingerprint)),
    h('h1', {}, f.title),
    facts([
      ['Severity', severity(f.severity)],
      ['State', badge(stateOf(f, proposals))],
      ['Rule', h('code', {}, f.rule)],
      ['Subject', entityLink(f.subject)],
      ['Source', `${f.detector} ${f.detector_version}`],
      ['Score', show(f.score)],
      d && ['Policy', `version ${d.policy_version}; auto-fix ${show(d.auto_fix)}${d.suppressed ? `; suppressed: ${d.suppress_reason ?? ''}` : ''}`],
      narrative && ['Campaign', link(`/campaign/${encodeURIComponent(f.fingerprint)}`, 'accounts, messages and timeline')],
    ]),
    section('Evidence', table('Evidence', ['Statement', 'Subject', 'Source', 'First seen', 'Last seen', 'Not observed since'],
      (f.evidence ?? []).map((e) => [
        e.statement, entityLink(e.subject), h('span', { class: 'source' }, e.provenance.source),
        time(e.provenance.first_seen), time(e.provenance.last_seen),
        e.provenance.not_observed_since ? time(e.provenance.not_observed_since) : 'observed',
      ]))),
    section('Attributes', facts(Object.entries(f.attributes ?? {}).map(([k, v]) => [k, show(v)]))),
    section('Fix', f.action
      ? [facts([
        ['Action', h('code', {}, f.action.kind)],
        ['Executor', f.action.executor],
        ['Target', entityLink(f.action.target)],
        !f.action.plan && ['Not planned', f.action.unplanned ?? ''],
        f.action.approval && ['Approval', f.action.approval],
      ]), fixes.map((p) => h('p', {}, link(`/proposal/${encodeURIComponent(p.id)}`, `Proposal ${p.id}`), ' ', badge(p.state.replaceAll('_', ' '))))]
      : h('p', { class: 'empty' }, 'The detector suggests no fix for this finding.')),
  );
  return { title: f.title, topics: ['findings', 'proposals'], node };
}

