// Proposals: fixes with their exact plan, the verdicts of people and the
// trail of every state change.

import { get, post } from './api.js';
import { h, fill, show, time, badge, link, entityLink, table, facts, section } from './dom.js';

const words = (state) => state.replaceAll('_', ' ');
const mayDecide = (role) => role === 'approver' || role === 'admin';

function dryRunNote(dryRun) {
  return dryRun
    ? h('p', { class: 'note', id: 'dry-run' }, 'Dry run is on (actions.dry_run): an approved fix is held and nothing is changed; its plan is what would run.')
    : null;
}

export async function list() {
  const { proposals, dry_run: dryRun } = await get('/proposals');
  return {
    title: 'Proposals',
    topics: ['proposals'],
    node: h('div', {}, h('h1', {}, 'Proposals'), dryRunNote(dryRun),
      table('Proposed fixes', ['Proposal', 'Action', 'Target', 'State', 'Approvals', 'Expires'],
        proposals.map((p) => [
          link(`/proposal/${encodeURIComponent(p.id)}`, p.id),
          h('code', {}, p.kind),
          entityLink(p.target),
          badge(words(p.state)),
          `${p.approvals.length} of ${p.approval?.approvers ?? 0}`,
          time(p.expires_at),
        ]), 'no fix has been proposed.')),
  };
}

function plan(p) {
  const calls = p.plan?.calls ?? [];
  return section('Plan',
    p.plan ? h('p', {}, 'The exact calls the executor would make, from its dry run:') : h('p', { class: 'empty' }, 'No plan.'),
    calls.map((c, i) => h('div', { class: 'call' },
      h('h3', {}, `Call ${i + 1}: `, h('code', {}, `${c.method} ${c.url}`)),
      h('p', {}, c.effect ?? ''),
      c.body ? h('pre', { tabindex: 0, 'aria-label': `Body of call ${i + 1}` }, pretty(c.body)) : null)),
    p.plan?.expected ? facts([['Expected afterwards', p.plan.expected]]) : null);
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text);
  }
}

// What a person may ask of a proposal in each state: an undecided one is
// approved or rejected; a failed or expired one may be tried again, which
// plans it afresh and asks the approval policy again.
function verbs(state) {
  if (state === 'awaiting_approval') {
    return [['approve', 'Approve', 'primary'], ['reject', 'Reject', 'danger']];
  }
  if (state === 'failed' || state === 'expired') return [['retry', 'Try again', 'primary']];
  return null;
}

function decide(ctx, p) {
  const offered = verbs(p.state);
  if (!offered) return null;
  if (!mayDecide(ctx.role)) {
    return h('p', { class: 'note', id: 'cannot-decide' },
      offered.length > 1
        ? `Approving or rejecting needs the approver role; you are signed in as ${ctx.role}.`
        : `Trying a fix again needs the approver role; you are signed in as ${ctx.role}.`);
  }
  const result = h('p', { role: 'status', id: 'decision-result' });
  const reason = h('textarea', { id: 'reason', name: 'reason', 'aria-required': 'true', rows: 2 });
  // Checked here rather than by the browser, so the message is ours and is
  // read out.
  const form = h('form', { class: 'decide', 'aria-label': 'Decide on this proposal', novalidate: true },
    h('label', { for: 'reason' }, 'Reason (kept in the trail)'), reason,
    h('div', { class: 'buttons' },
      ...offered.map(([value, label, style]) => h('button', { type: 'submit', value, class: style }, label))),
    result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const verb = e.submitter?.value ?? offered[0][0];
    if (!reason.value.trim()) {
      fill(result, 'Give a reason first.');
      reason.focus();
      return;
    }
    for (const b of form.querySelectorAll('button')) b.disabled = true;
    try {
      const { proposal } = await post(`/proposals/${encodeURIComponent(p.id)}/${verb}`, { reason: reason.value.trim() });
      ctx.announce(`Proposal ${p.id} is now ${words(proposal.state)}.`);
      ctx.rerender();
    } catch (err) {
      fill(result, `Refused: ${err.message}`);
      for (const b of form.querySelectorAll('button')) b.disabled = false;
    }
  });
  return section('Decide', form);
}

export async function one(ctx) {
  const id = ctx.params[0];
  const { proposals, dry_run: dryRun } = await get('/proposals');
  const p = proposals.find((x) => x.id === id);
  if (!p) {
    return { title: 'Proposal', topics: ['proposals'], node: h('div', {}, h('h1', {}, 'Proposal not found'), link('/proposals', 'All proposals')) };
  }
  const last = p.events.at(-1);
  const node = h('div', {},
    h('p', { class: 'crumbs' }, link('/proposals', 'Proposals'), ' / ', h('code', {}, p.id)),
    h('h1', {}, h('code', {}, p.kind), ' on ', p.target.key),
    dryRunNote(dryRun),
    facts([
      ['State', h('span', { id: 'proposal-state' }, badge(words(p.state)))],
      last && ['Latest', h('span', { id: 'proposal-latest' }, `${last.actor}: ${last.reason}`)],
      ['Finding', link(`/finding/${encodeURIComponent(p.finding)}`, p.rule)],
      ['Target', entityLink(p.target)],
      ['Executor', p.executor],
      ['Parameters', facts(Object.entries(p.parameters ?? {}).map(([k, v]) => [k, show(v)]))],
      p.approval && ['Needs', `${p.approval.mode}: ${p.approval.approvers} approval(s) by the ${p.approval.role} role`],
      ['Expires', time(p.expires_at)],
    ]),
    decide(ctx, p),
    plan(p),
    section('Approvals', table('Approvals', ['When', 'By', 'Reason'],
      p.approvals.map((a) => [time(a.at), a.actor, a.reason]), 'none yet.')),
    p.outcome ? section('Outcome', h('pre', { tabindex: 0 }, JSON.stringify(p.outcome, null, 2))) : null,
    section('Audit trail', table('Every state change', ['When', 'State', 'By', 'Why'],
      p.events.map((e) => [time(e.at), badge(words(e.state)), e.actor, e.reason]))));
  return { title: `Proposal ${p.id}`, topics: ['proposals'], node };
}
