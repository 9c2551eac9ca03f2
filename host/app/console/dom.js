// Builds the page from data. Every value goes in as text (textContent or
// an attribute), never as markup: findings and messages carry text that
// outsiders wrote.

/** An element with attributes and children; strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces everything inside `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A twin value as the entity API gives it ({type, value}) made plain. */
export function plain(v) {
  if (v && typeof v === 'object' && 'type' in v && 'value' in v) return v.value;
  if (v && typeof v === 'object' && v.type === 'null') return null;
  return v;
}

/** A value for display: lists joined, objects as JSON text. */
export function show(v) {
  v = plain(v);
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.map(show).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A time as a <time> element, in the reader's locale with the exact value on hover. */
export function time(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return h('time', { datetime: iso, title: iso }, d.toLocaleString());
}

export function severity(level) {
  return h('span', { class: `sev sev-${level}` }, level ?? 'unknown');
}

export function badge(text, kind = '') {
  return h('span', { class: `badge ${kind}`.trim() }, text);
}

/** A link inside the console. */
export function link(route, ...children) {
  return h('a', { href: `#${route}` }, ...children);
}

export function entityRoute(ref) {
  return `/entity/${encodeURIComponent(ref.label)}/${encodeURIComponent(ref.key)}`;
}

/** "Label(key)" as findings write subjects, parsed back to a reference. */
export function parseSubject(text) {
  const m = /^([A-Za-z]+)\((.*)\)$/.exec(text ?? '');
  return m ? { label: m[1], key: m[2] } : null;
}

export function entityLink(ref) {
  if (typeof ref === 'string') ref = parseSubject(ref) ?? { label: '', key: ref };
  return link(entityRoute(ref), `${ref.label} ${ref.key}`);
}

/**
 * A table with a caption and column headers; `rows` are arrays of cells.
 * An empty table says so instead of showing nothing.
 */
export function table(caption, headers, rows, empty = 'None.') {
  if (!rows.length) return h('p', { class: 'empty' }, `${caption}: ${empty}`);
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))));
}

/** A description list from [term, value] pairs. */
export function facts(pairs) {
  return h('dl', { class: 'facts' },
    pairs.filter(Boolean).flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

/** Where a fact came from and when: source, first and last seen. */
export function provenance(p) {
  if (!p) return '—';
  return h('span', { class: 'prov' },
    h('span', { class: 'source' }, p.source), ' · first seen ', time(p.first_seen),
    ' · last seen ', time(p.last_seen),
    p.not_observed_since ? [' · ', h('strong', {}, 'not observed since '), time(p.not_observed_since)] : null);
}

export function section(title, ...children) {
  return h('section', { class: 'panel', 'aria-label': title }, h('h2', {}, title), ...children);
}
