// @ts-check
// The usage dashboard (`/dashboard`): usage over time as an SVG chart
// (drawn with DOM APIs; a table gives the same numbers), top queries and
// searches that found nothing, content gaps, articles that need an
// update (one click asks the owner), and the article usage report,
// sortable on every column (server-side, `aria-sort` on the heading).
import { kmt, startPage, needSignIn, byId, h, announce, describe, when } from './page-common.js';

/** @typedef {import('./kmt-types.js').ArticleUsage} ArticleUsage */
/** @typedef {import('./kmt-types.js').TimeSeries} TimeSeries */

const SVG = 'http://www.w3.org/2000/svg';
const main = byId('main');
const metric = /** @type {HTMLSelectElement} */ (byId('metric'));

/** The report's columns: [sort key, heading, numeric]. */
const COLUMNS = /** @type {const} */ ([
  ['id', 'Id', true], ['title', 'Title', false], ['category', 'Category', false], ['status', 'Status', false],
  ['last_reviewed', 'Last reviewed', false], ['review_due', 'Review due', false], ['uses', 'Uses', true],
  ['unique_readers', 'Readers', true], ['avg_rating', 'Rating', true], ['ratings', 'Ratings', true],
  ['helpful_pct', 'Helpful', true], ['feedback', 'Feedback', true],
]);
/** @type {{sort: string, order: 'asc'|'desc'}} */
const sort = { sort: 'uses', order: 'desc' };
/** The report's page: first row and rows per page. */
const paging = { offset: 0, size: 50 };

const REASONS = /** @type {Record<string, string>} */ ({
  review_overdue: 'review overdue', low_rating: 'rated low', unhelpful: 'voted unhelpful',
  feedback: 'has feedback', falling_use: 'used less and less',
});


/**
 * An SVG element with attributes.
 * @param {string} tag
 * @param {Record<string, string|number>} [attrs]
 * @param {...Node} children
 * @returns {SVGElement}
 */
function svg(tag, attrs = {}, ...children) {
  const e = /** @type {SVGElement} */ (document.createElementNS(SVG, tag));
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  e.append(...children);
  return e;
}

/** @param {string} text */
const svgText = (text) => document.createTextNode(text);

/** A day for people (UTC date of a bucket). @param {string} at */
const day = (at) => at.slice(0, 10);

async function usage() {
  const m = /** @type {'views'|'searches'|'clicks'} */ (metric.value);
  const chart = byId('usage-chart');
  chart.setAttribute('aria-busy', 'true');
  /** @type {TimeSeries} */
  let ts;
  try {
    ts = await kmt.timeseries({ metric: m, bucket: 'day' });
  } catch (e) {
    chart.replaceChildren(h('p', { text: `Usage could not be loaded: ${describe(e)}` }));
    chart.removeAttribute('aria-busy');
    return;
  }
  const label = metric.selectedOptions[0]?.textContent ?? m;
  const total = ts.points.reduce((n, p) => n + p.count, 0);
  const peak = ts.points.reduce((best, p) => (p.count > best.count ? p : best), { at: '', count: 0 });
  const summary = `${total} ${label} from ${day(ts.from)} to ${day(ts.to)}` +
    (peak.count ? `; the busiest day was ${day(peak.at)} with ${peak.count}.` : '.');
  byId('usage-summary').textContent = summary;
  chart.replaceChildren(barChart(ts.points, `${label} per day`, summary));
  chart.dataset.metric = m;
  chart.dataset.total = String(total);
  chart.removeAttribute('aria-busy');
  /** @type {HTMLTableElement} */ (byId('usage-table')).tBodies[0].replaceChildren(
    ...ts.points.map((p) => h('tr', {}, h('th', { attrs: { scope: 'row' }, text: day(p.at) }), h('td', { class: 'num', text: String(p.count) }))));
}

/**
 * A vertical bar chart of counts over time.
 * @param {{at: string, count: number}[]} points
 * @param {string} title
 * @param {string} desc
 */
function barChart(points, title, desc) {
  const W = 720, H = 240, left = 44, bottom = 28, top = 12, right = 8;
  const max = Math.max(1, ...points.map((p) => p.count));
  const plotW = W - left - right, plotH = H - top - bottom;
  const step = plotW / Math.max(1, points.length);
  const ids = { t: 'usage-svg-title', d: 'usage-svg-desc' };
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${ids.t} ${ids.d}`, id: 'usage-svg' },
    svg('title', { id: ids.t }, svgText(title)),
    svg('desc', { id: ids.d }, svgText(desc)),
    svg('line', { class: 'axis', x1: left, y1: top + plotH, x2: W - right, y2: top + plotH }),
    svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: top + plotH }),
    svg('text', { x: left - 6, y: top + 10, 'text-anchor': 'end' }, svgText(String(max))),
    svg('text', { x: left - 6, y: top + plotH, 'text-anchor': 'end' }, svgText('0')));
  points.forEach((p, i) => {
    const hgt = (p.count / max) * plotH;
    root.append(svg('rect', {
      class: 'bar', x: left + i * step + step * 0.1, y: top + plotH - hgt,
      width: Math.max(1, step * 0.8), height: hgt, 'data-count': p.count,
    }, svg('title', {}, svgText(`${day(p.at)}: ${p.count}`))));
  });
  const marks = points.length > 2 ? [0, Math.floor(points.length / 2), points.length - 1] : points.map((_, i) => i);
  for (const i of marks) {
    root.append(svg('text', { x: left + i * step + step / 2, y: H - 8, 'text-anchor': 'middle' }, svgText(day(points[i].at).slice(5))));
  }
  return root;
}

/**
 * A horizontal bar chart of labelled counts.
 * @param {{label: string, count: number}[]} rows
 * @param {string} title
 * @param {string} id
 */
function hbarChart(rows, title, id) {
  const W = 480, rowH = 22, labelW = 200, H = Math.max(1, rows.length) * rowH + 8;
  const max = Math.max(1, ...rows.map((r) => r.count));
  const desc = rows.map((r) => `${r.label}: ${r.count}`).join('; ');
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc`, id },
    svg('title', { id: `${id}-title` }, svgText(title)),
    svg('desc', { id: `${id}-desc` }, svgText(desc || 'no data')));
  rows.forEach((r, i) => {
    const y = 4 + i * rowH;
    const w = ((W - labelW - 40) * r.count) / max;
    const label = r.label.length > 28 ? `${r.label.slice(0, 27)}…` : r.label;
    root.append(
      svg('text', { x: labelW - 6, y: y + 15, 'text-anchor': 'end' }, svgText(label)),
      svg('rect', { class: 'bar', x: labelW, y: y + 3, width: Math.max(1, w), height: rowH - 6, 'data-count': r.count }),
      svg('text', { x: labelW + w + 4, y: y + 15 }, svgText(String(r.count))));
  });
  return root;
}

async function queries() {
  try {
    const q = await kmt.queryReport({ limit: 10 });
    const o = q.overall;
    byId('queries-overall').textContent = `${o.searches} searches, ${o.zero_results} found nothing, ` +
      `${Math.round(o.ctr * 100)} % led to a click.`;
    byId('top-chart').replaceChildren(hbarChart(q.top.map((r) => ({ label: r.query, count: r.searches })), 'Searches per query', 'top-svg'));
    /** @type {HTMLTableElement} */ (byId('top-table')).tBodies[0].replaceChildren(...q.top.map((r) => h('tr', {},
      h('th', { attrs: { scope: 'row' }, text: r.query }),
      h('td', { class: 'num', text: String(r.searches) }),
      h('td', { class: 'num', text: String(r.clicks) }),
      h('td', { class: 'num', text: `${Math.round(r.ctr * 100)} %` }))));
    /** @type {HTMLTableElement} */ (byId('none-table')).tBodies[0].replaceChildren(...q.no_results.map((r) => h('tr', {},
      h('th', { attrs: { scope: 'row' }, text: r.query }),
      h('td', { class: 'num', text: String(r.zero_results) }),
      h('td', { text: when(r.last_at) }))));
    byId('none-empty').hidden = q.no_results.length > 0;
  } catch (e) {
    byId('queries-overall').textContent = `Queries could not be loaded: ${describe(e)}`;
  }
}

async function gaps() {
  const list = byId('gaps-list');
  try {
    const gs = await kmt.gaps({ limit: 10 });
    list.replaceChildren(...gs.map((g) => {
      const href = `/editor?${new URLSearchParams({ title: g.suggested_title, ...(g.category ? { category: g.category } : {}) })}`;
      return h('li', {},
        h('p', {}, h('strong', { text: g.suggested_title })),
        h('p', { class: 'meta', text: `${g.searches} searches (${g.zero_results} found nothing)${g.category ? ` · likely category ${g.category}` : ''}` }),
        h('p', { class: 'meta', text: `Asked as: ${g.queries.map((q) => `“${q.query}”`).join(', ')}` }),
        h('a', { attrs: { href }, text: `Write an article on “${g.suggested_title}”` }));
    }));
    byId('gaps-note').textContent = gs.length ? '' : 'No gaps: unanswered searches asked more than once show here.';
  } catch (e) {
    byId('gaps-note').textContent = `Content gaps are shown to writers: ${describe(e)}`;
  }
}

async function stale() {
  const body = /** @type {HTMLTableElement} */ (byId('stale-table')).tBodies[0];
  try {
    const rows = await kmt.updatePrompts({ limit: 20 });
    body.replaceChildren(...rows.map((r) => {
      const titleId = `stale-${r.id}`;
      const cell = h('td', {});
      cell.append(h('button', {
        class: 'secondary',
        attrs: { type: 'button', 'aria-describedby': titleId },
        text: `Ask ${r.owner} to update`,
        on: {
          click: async (/** @type {Event} */ ev) => {
            const b = /** @type {HTMLButtonElement} */ (ev.currentTarget);
            try {
              await kmt.requestUpdate(r.id, { users: [r.owner], note: `Please update: ${r.reasons.map((x) => REASONS[x] ?? x).join(', ')}` });
              b.disabled = true;
              b.textContent = 'Asked';
              announce(`${r.owner} was asked to update “${r.title}”.`);
            } catch (e) {
              announce(`Could not ask for an update: ${describe(e)}`);
            }
          },
        },
      }));
      return h('tr', {},
        h('th', { attrs: { scope: 'row' } }, h('a', { attrs: { href: `/article?id=${r.id}`, id: titleId }, text: r.title })),
        h('td', { text: r.owner }),
        h('td', { text: r.reasons.map((x) => REASONS[x] ?? x).join(', ') }),
        h('td', { class: 'num', text: String(r.uses) }),
        cell);
    }));
    byId('stale-empty').hidden = rows.length > 0;
  } catch (e) {
    byId('stale-empty').hidden = false;
    byId('stale-empty').textContent = `Could not load: ${describe(e)}`;
  }
}

/** The report, sorted as chosen. */
async function report() {
  const table = /** @type {HTMLTableElement} */ (byId('report-table'));
  table.tHead?.rows[0].replaceChildren(...COLUMNS.map(([key, label, num]) => {
    const active = sort.sort === key;
    const th = h('th', {
      class: num ? 'num' : '',
      attrs: { scope: 'col', 'aria-sort': active ? (sort.order === 'asc' ? 'ascending' : 'descending') : 'none', 'data-key': key },
    });
    th.append(h('button', {
      class: 'sort',
      attrs: { type: 'button' },
      on: {
        click: () => {
          sort.order = sort.sort === key && sort.order === 'desc' ? 'asc' : sort.sort === key ? 'desc' : num ? 'desc' : 'asc';
          sort.sort = key;
          paging.offset = 0;
          report().then(() => { /** @type {HTMLElement|null} */ (table.querySelector(`th[data-key="${key}"] button`))?.focus(); });
        },
      },
    }, label, h('span', { attrs: { 'aria-hidden': 'true' }, text: active ? (sort.order === 'asc' ? ' ▲' : ' ▼') : '' })));
    return th;
  }));
  table.setAttribute('aria-busy', 'true');
  try {
    const r = await kmt.articleReport({ sort: sort.sort, order: sort.order, limit: paging.size, offset: paging.offset });
    table.tBodies[0].replaceChildren(...r.rows.map(reportRow));
    table.dataset.sort = `${sort.sort}:${sort.order}`;
    const range = r.rows.length ? `${paging.offset + 1}–${paging.offset + r.rows.length} of ${r.total}` : `0 of ${r.total}`;
    byId('report-range').textContent = `Articles ${range}`;
    table.dataset.offset = String(paging.offset);
    /** @type {HTMLButtonElement} */ (byId('report-prev')).disabled = paging.offset === 0;
    /** @type {HTMLButtonElement} */ (byId('report-next')).disabled = paging.offset + paging.size >= r.total;
    announce(`Article usage report: articles ${range}, by ${COLUMNS.find((c) => c[0] === sort.sort)?.[1]} ${sort.order === 'asc' ? 'ascending' : 'descending'}.`);
  } catch (e) {
    table.tBodies[0].replaceChildren(h('tr', {}, h('td', { attrs: { colspan: COLUMNS.length }, text: `The report could not be loaded: ${describe(e)}` })));
  } finally {
    table.removeAttribute('aria-busy');
  }
}

/** @param {ArticleUsage} a */
function reportRow(a) {
  /** @param {number|null|undefined} v @param {(n: number) => string} [f] */
  const num = (v, f = String) => h('td', { class: 'num', text: v === null || v === undefined ? '—' : f(v) });
  return h('tr', { attrs: { 'data-id': a.id } },
    num(a.id),
    h('th', { attrs: { scope: 'row' } }, h('a', { attrs: { href: `/article?id=${a.id}` }, text: a.title })),
    h('td', { text: a.category }),
    h('td', { text: a.status.replace('_', ' ') }),
    h('td', { text: a.last_reviewed ? day(a.last_reviewed) : '—' }),
    h('td', { text: a.review_due ? day(a.review_due) : '—' }),
    num(a.uses), num(a.unique_readers), num(a.avg_rating, (n) => n.toFixed(1)), num(a.ratings),
    num(a.helpful_pct, (n) => `${Math.round(n)} %`), num(a.feedback));
}

// Started last: everything above is defined by then.
const session = await startPage('dashboard');
if (!session) {
  needSignIn(main, 'Usage dashboard');
} else {
  metric.addEventListener('change', () => { usage(); });
  byId('report-prev').addEventListener('click', () => { paging.offset = Math.max(0, paging.offset - paging.size); report(); });
  byId('report-next').addEventListener('click', () => { paging.offset += paging.size; report(); });
  byId('report-size').addEventListener('change', (e) => {
    paging.size = Number(/** @type {HTMLSelectElement} */ (e.target).value);
    paging.offset = 0;
    report();
  });
  await Promise.all([usage(), queries(), gaps(), stale(), report()]);
  main.dataset.ready = 'true';
}
