/**
 * The page of one run (/runs/<id>): a static document whose script (RUN_SCRIPT, at /run.js:
 * the CSP allows no inline script) follows `/api/runs/<id>/events` (detail + timeline every
 * few seconds, polling `/api/runs/<id>` and `/timeline` instead when the stream fails),
 * draws the charts with uPlot (served by the board, /assets/uplot.*) and calls the run's
 * control routes. Every value is inserted with textContent: results come from the web and
 * LLMs, and none of it may become markup.
 */
export const RUN_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>brandq run</title>
<link rel="stylesheet" href="/assets/uplot.css">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h2 { font-size: 16px; margin: 24px 0 8px; }
  nav a { margin-right: 16px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e3e6ee; vertical-align: top; }
  th { background: #f4f6fa; font-weight: 600; }
  td.wrap { white-space: normal; max-width: 420px; overflow-wrap: anywhere; }
  #results td { white-space: nowrap; max-width: 320px; overflow: hidden; text-overflow: ellipsis; }
  .facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
  .facts dt { color: #667; } .facts dd { margin: 0; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 16px; }
  .chart h3 { font-size: 14px; margin: 0 0 4px; }
  .controls button, .controls input { font: inherit; margin-right: 8px; }
  .controls input { width: 90px; }
  pre { background: #f4f6fa; padding: 10px; margin: 0; }
  .status-completed { color: #1a7f37; } .status-running { color: #3a7bd5; }
  .status-budget_exhausted, .status-paused { color: #b35900; } .status-cancelled { color: #888; }
  .muted { color: #667; } .error { color: #b3261e; }
</style>
</head>
<body>
<h1>Run <span id="run-id"></span> <span id="status"></span></h1>
<nav><a href="/runs">All runs</a><a href="/admin/queues">Bull Board</a></nav>
<dl class="facts">
  <dt>Progress</dt><dd id="progress"></dd>
  <dt>Recipe</dt><dd id="recipe"></dd>
  <dt>ETA</dt><dd id="eta"></dd>
  <dt>Fair share</dt><dd id="fair-share"></dd>
  <dt>What binds now</dt><dd id="binding"></dd>
  <dt>Spend</dt><dd id="spend"></dd>
</dl>
<h2>Controls</h2>
<div class="controls">
  <button type="button" id="pause">Pause</button>
  <button type="button" id="resume">Resume</button>
  <button type="button" id="cancel">Cancel</button>
  <label>Budget $ <input type="number" id="budget" min="0" step="0.01"></label>
  <button type="button" id="set-budget">Set budget</button>
  <label>Weight <input type="number" id="weight" min="1" max="1000" step="1"></label>
  <button type="button" id="set-weight">Set weight</button>
  <span id="control-message" class="muted"></span>
</div>
<h2>Charts</h2>
<div class="charts">
  <div class="chart"><h3>Brands done per minute</h3><div id="chart-done" data-points="0"></div></div>
  <div class="chart"><h3>Spend vs budget ($)</h3><div id="chart-spend" data-points="0"></div></div>
  <div class="chart"><h3>429s and limiter waits per minute</h3><div id="chart-waits" data-points="0"></div></div>
</div>
<p class="muted" id="charts-note"></p>
<h2>Failures</h2>
<table id="failures"><thead><tr><th>Kind</th><th>Reason</th><th>Brands</th><th>Latest</th><th></th></tr></thead><tbody></tbody></table>
<h2>Cost</h2>
<pre id="cost-summary"></pre>
<h2>Latest results</h2>
<p><a id="download-csv" download>Download CSV</a> · <a id="download-jsonl" download>Download JSONL</a></p>
<table id="results"><thead><tr></tr></thead><tbody></tbody></table>
<p><button type="button" id="newer">Newer</button> <span id="results-page" class="muted"></span> <button type="button" id="older">Older</button></p>
<h2>History</h2>
<ul id="history"></ul>
<p class="muted" id="updated"></p>
<script src="/assets/uplot.js"></script>
<script src="/run.js"></script>
</body>
</html>`;

export const RUN_SCRIPT = `const runId = decodeURIComponent(location.pathname.split('/').pop());
const api = '/api/runs/' + encodeURIComponent(runId);
const PAGE_SIZE = 20;
const WAIT_REASONS = ['requests', 'tokens', 'concurrency', 'stagger', 'cooldown'];
let resultsPage = 1;
let polling = null;
const charts = {};

function $(id) { return document.getElementById(id); }
function text(id, value) { $(id).textContent = value; }
function money(micros) { return '$' + (micros / 1e6).toFixed(2); }
/** Long answers (descriptions, source lists) are cut in the table; the whole text is the cell's tooltip. */
function shortCell(row, value) { const td = cell(row, value.length > 80 ? value.slice(0, 79) + '…' : value); td.title = value; return td; }
function cell(row, value, cls) { const td = document.createElement('td'); td.textContent = value; if (cls) td.className = cls; row.appendChild(td); return td; }
function duration(seconds) {
  if (seconds < 90) return Math.round(seconds) + ' s';
  if (seconds < 5400) return Math.round(seconds / 60) + ' min';
  return (seconds / 3600).toFixed(1) + ' h';
}

function showDetail(d) {
  const run = d.run;
  text('run-id', run.id);
  const status = $('status');
  status.textContent = run.status + (run.statusReason ? ' (' + run.statusReason + ')' : '');
  status.className = 'status-' + run.status;
  text('progress', (run.succeeded + run.failed) + ' / ' + run.total + ' brands (' + run.succeeded + ' done, ' + run.failed + ' failed, ' + run.skipped + ' skipped)');
  text('recipe', d.recipe.name + ': ' + d.recipe.steps.map((s) => s.id + ' (' + s.type + ')').join(', '));
  const rate = d.eta.ratePerMinute.toFixed(1) + ' brands/min';
  text('eta', d.eta.seconds === null ? 'unknown at ' + rate : d.eta.seconds === 0 ? 'nothing left to do' : 'about ' + duration(d.eta.seconds) + ' at ' + rate);
  showFairShare(run, d.fairShare);
  $('binding').textContent = d.binding.words;
  $('binding').dataset.reason = d.binding.reason;
  const l = d.ledger;
  const saved = l.providers.tavily.savedMicros + l.providers.llm.savedMicros;
  text('spend', money(l.spentMicros) + ' confirmed, ' + money(l.unconfirmedMicros) + ' unconfirmed, ' + money(l.reservedMicros) + ' reserved in flight'
    + (l.budgetMicros > 0 ? ' of a ' + money(l.budgetMicros) + ' budget' : ', no budget') + '; cache saved ' + money(saved));
  const budget = $('budget');
  if (document.activeElement !== budget) budget.value = l.budgetMicros > 0 ? (l.budgetMicros / 1e6).toFixed(2) : '';
  text('cost-summary', d.costSummary);
  showFailures(d.failures.groups);
  showResults(d.results);
  const history = $('history');
  history.replaceChildren();
  for (const h of d.history) {
    const li = document.createElement('li');
    li.textContent = [h.at, h.by, h.action, h.details ? JSON.stringify(h.details) : ''].filter(Boolean).join(' · ');
    history.appendChild(li);
  }
  text('updated', 'updated ' + new Date().toLocaleTimeString());
}

/** Its weight and ceiling, and what it got of the fleet's calls over the last minute, with the ETA at that pace. */
function showFairShare(run, s) {
  const asked = 'weight ' + s.weight + (s.maxRpm === null ? ', no ceiling of its own' : ', at most ' + s.maxRpm + ' calls/min per provider');
  const got = run.status === 'completed' || run.status === 'cancelled' ? ''
    : '; ' + Math.round(s.measuredShare * 100) + '% of all calls over the last minute ('
      + s.calls + ' calls, ' + s.done + ' brands done), ETA ' + (s.etaSeconds === null ? 'unknown' : s.etaSeconds === 0 ? 'nothing left' : 'about ' + duration(s.etaSeconds)) + ' at that share';
  text('fair-share', asked + got);
  const weight = $('weight');
  if (document.activeElement !== weight) weight.value = String(s.weight);
}

function showFailures(groups) {
  const body = $('failures').querySelector('tbody');
  body.replaceChildren();
  for (const g of groups) {
    const tr = document.createElement('tr');
    tr.dataset.kind = g.kind;
    cell(tr, g.kind);
    cell(tr, g.reason, 'wrap');
    cell(tr, String(g.count));
    cell(tr, g.latest.map((e) => e.brand + ' (row ' + e.rowNumber + ')').join(', '), 'wrap');
    const action = document.createElement('button');
    action.type = 'button';
    action.textContent = 'Retry these';
    action.addEventListener('click', () => control('retry', { group: g.id }));
    tr.appendChild(document.createElement('td')).appendChild(action);
    body.appendChild(tr);
  }
  if (groups.length === 0) {
    const tr = document.createElement('tr');
    cell(tr, 'no failed brands', 'muted').colSpan = 5;
    body.appendChild(tr);
  }
}

function showResults(results) {
  const head = $('results').querySelector('thead tr');
  head.replaceChildren();
  for (const name of ['row', 'brand', ...results.columns]) { const th = document.createElement('th'); th.textContent = name; head.appendChild(th); }
  const body = $('results').querySelector('tbody');
  body.replaceChildren();
  for (const r of results.rows) {
    const tr = document.createElement('tr');
    cell(tr, String(r.row));
    cell(tr, r.brand);
    for (const name of results.columns) shortCell(tr, r.fields[name] ?? '');
    body.appendChild(tr);
  }
  const pages = Math.max(1, Math.ceil(results.total / results.pageSize));
  text('results-page', 'page ' + results.page + ' of ' + pages + ' (' + results.total + ' results, newest first)');
  $('newer').disabled = results.page <= 1;
  $('older').disabled = results.page >= pages;
}

/** Per-minute rates of a bucket's counts. */
function perMinute(count, bucketMs) { return count * 60000 / bucketMs; }

function chart(id, series, data) {
  const el = $(id);
  el.dataset.points = String(data[0].length);
  if (charts[id]) { charts[id].setData(data); return; }
  const width = Math.max(300, el.clientWidth || 380);
  charts[id] = new uPlot({ width, height: 220, series: [{}, ...series], axes: [{}, { size: 60 }], legend: { show: true } }, data, el);
}

function showTimeline(tl) {
  if (!tl || !tl.points) return;
  const xs = tl.points.map((p) => p.t / 1000);
  chart('chart-done', [{ label: 'done', stroke: '#3a7bd5' }, { label: 'failed', stroke: '#b3261e' }],
    [xs, tl.points.map((p) => perMinute(p.done, tl.bucketMs)), tl.points.map((p) => perMinute(p.failed, tl.bucketMs))]);
  // The projection runs from the last point to the expected end (the ETA), at the projected spend.
  const last = tl.points[tl.points.length - 1];
  const endX = last && tl.projectedSpendMicros !== null && projectedEnd !== null ? projectedEnd / 1000 : null;
  const spendX = endX !== null && endX > xs[xs.length - 1] ? [...xs, endX] : xs;
  const pad = (values, extra) => (spendX.length > xs.length ? [...values, extra] : values);
  chart('chart-spend', [
    { label: 'spent', stroke: '#3a7bd5' },
    { label: 'budget', stroke: '#b35900' },
    { label: 'projected', stroke: '#888', dash: [6, 4] },
  ], [
    spendX,
    pad(tl.points.map((p) => p.spentMicros / 1e6), null),
    spendX.map(() => (tl.budgetMicros > 0 ? tl.budgetMicros / 1e6 : null)),
    spendX.map((_, i) => (spendX.length > xs.length && i === xs.length - 1 ? last.spentMicros / 1e6 : i === xs.length ? tl.projectedSpendMicros / 1e6 : null)),
  ]);
  chart('chart-waits', [{ label: '429s', stroke: '#b3261e' }, ...WAIT_REASONS.map((r, i) => ({ label: r, stroke: ['#3a7bd5', '#1a7f37', '#b35900', '#7a4fd5', '#888'][i] }))],
    [xs, tl.points.map((p) => perMinute(p.rateLimited, tl.bucketMs)), ...WAIT_REASONS.map((r) => tl.points.map((p) => perMinute(p.waits[r] || 0, tl.bucketMs)))]);
  text('charts-note', tl.points.length + ' points, ' + Math.round(tl.bucketMs / 1000) + ' s each');
}

let projectedEnd = null;
function show(update) {
  if (update.detail) {
    const eta = update.detail.eta.seconds;
    projectedEnd = eta === null ? null : Date.now() + eta * 1000;
    if (resultsPage === 1) showDetail(update.detail);
    else showDetail({ ...update.detail, results: lastResults || update.detail.results });
  }
  if (update.timeline) showTimeline(update.timeline);
}

let lastResults = null;
async function fetchJson(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(url + ': HTTP ' + res.status);
  return res.json();
}
async function loadResultsPage(page) {
  const d = await fetchJson(api + '?page=' + page + '&pageSize=' + PAGE_SIZE);
  resultsPage = d.results.page;
  lastResults = d.results;
  showResults(d.results);
}
async function poll() {
  try {
    const detail = await fetchJson(api + '?page=' + resultsPage + '&pageSize=' + PAGE_SIZE);
    const timeline = await fetchJson(api + '/timeline').catch(() => undefined);
    lastResults = detail.results;
    show({ detail, timeline });
  } catch (err) {
    text('updated', 'update failed: ' + err);
  }
}
function startPolling() {
  if (polling) return;
  document.body.dataset.live = 'polling';
  poll();
  polling = setInterval(poll, 2000);
}

async function control(action, body) {
  const message = $('control-message');
  message.className = 'muted';
  message.textContent = action + '…';
  try {
    const res = await fetch(api + '/' + action, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body || {}) });
    const answer = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(answer.error || 'HTTP ' + res.status);
    message.textContent = action + ': done';
    await poll();
  } catch (err) {
    message.className = 'error';
    message.textContent = action + ' refused: ' + (err && err.message ? err.message : err);
  }
}

$('pause').addEventListener('click', () => control('pause'));
$('resume').addEventListener('click', () => control('resume'));
$('cancel').addEventListener('click', () => { if (confirm('Cancel run ' + runId + '? Its queued brands are removed.')) control('cancel'); });
$('set-budget').addEventListener('click', () => control('budget', { budgetUsd: Number($('budget').value) }));
$('set-weight').addEventListener('click', () => control('share', { weight: Number($('weight').value) }));
$('newer').addEventListener('click', () => loadResultsPage(resultsPage - 1));
$('older').addEventListener('click', () => loadResultsPage(resultsPage + 1));
$('download-csv').href = api + '/export?format=csv';
$('download-jsonl').href = api + '/export?format=jsonl';
text('run-id', runId);

if (typeof EventSource === 'function') {
  const events = new EventSource(api + '/events');
  document.body.dataset.live = 'events';
  events.onmessage = (e) => show(JSON.parse(e.data));
  // The browser reconnects by itself after a dropped stream; a refused one stays closed.
  events.onerror = () => { if (events.readyState === EventSource.CLOSED) startPolling(); };
} else {
  startPolling();
}
`;
