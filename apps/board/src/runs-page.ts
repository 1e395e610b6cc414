/**
 * The runs page: a static document whose script (RUNS_SCRIPT, at /runs.js: the CSP allows
 * no inline script) polls `/api/runs` and `/api/limits`; each run links to its own page
 * (/runs/<id>, run-page.ts). Every value is inserted with
 * textContent, so brand or source text can never become markup.
 */
export const RUNS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>brandq runs</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  nav a { margin-right: 16px; }
  table { border-collapse: collapse; width: 100%; margin-top: 16px; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e3e6ee; white-space: nowrap; }
  th { background: #f4f6fa; font-weight: 600; }
  .bar { width: 160px; height: 10px; background: #e3e6ee; border-radius: 5px; overflow: hidden; display: inline-block; vertical-align: middle; }
  .bar > span { display: block; height: 100%; background: #3a7bd5; }
  .status-completed { color: #1a7f37; } .status-running { color: #3a7bd5; }
  .status-budget_exhausted, .status-paused { color: #b35900; } .status-cancelled { color: #888; }
  .muted { color: #667; }
</style>
</head>
<body>
<h1>brandq</h1>
<nav><a href="/runs">Runs</a><a href="/admin/queues">Bull Board</a><a href="/metrics">Metrics</a></nav>
<h2>Runs</h2>
<table id="runs"><thead><tr>
  <th>Run</th><th>Status</th><th>Progress</th><th>Success</th><th>Failed</th><th>Skipped</th><th>Throughput</th><th>Cost / budget</th><th title="weight, own ceiling, share of the fleet's calls over the last minute, ETA at that share">Fair share</th><th>Source</th>
</tr></thead><tbody></tbody></table>
<h2>Shared limits</h2>
<table id="limits"><thead><tr>
  <th>Provider</th><th>Calls</th><th>Active leases</th><th>Tokens in window</th><th>Avg wait</th><th>Deferrals</th><th>Cooldown until</th>
</tr></thead><tbody></tbody></table>
<p class="muted" id="updated"></p>
<script src="/runs.js"></script>
</body>
</html>`;

export const RUNS_SCRIPT = `function cell(row, text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; row.appendChild(td); return td; }
function money(n) { return '$' + n.toFixed(2); }
function duration(seconds) {
  if (seconds < 90) return Math.round(seconds) + ' s';
  if (seconds < 5400) return Math.round(seconds / 60) + ' min';
  return (seconds / 3600).toFixed(1) + ' h';
}
/** A run that still has brands to do: its weight, ceiling, measured share and the ETA at that share. */
function fairShare(r) {
  if (r.status === 'completed' || r.status === 'cancelled') return '-';
  const s = r.fairShare;
  return 'weight ' + s.weight + (s.maxRpm === null ? '' : ', max ' + s.maxRpm + '/min') + ', ' + Math.round(s.measuredShare * 100) + '% of calls'
    + (s.etaSeconds === null ? '' : ', ETA ' + duration(s.etaSeconds));
}
async function refresh() {
  try {
    const runs = await (await fetch('/api/runs')).json();
    const body = document.querySelector('#runs tbody');
    body.replaceChildren();
    for (const r of runs) {
      const tr = document.createElement('tr');
      tr.dataset.run = r.id;
      const link = document.createElement('a');
      link.href = '/runs/' + encodeURIComponent(r.id);
      link.textContent = r.id;
      cell(tr, '').appendChild(link);
      cell(tr, r.status + (r.statusReason ? ' (' + r.statusReason + ')' : ''), 'status-' + r.status);
      const p = cell(tr, '');
      const bar = document.createElement('span'); bar.className = 'bar';
      const fill = document.createElement('span'); fill.style.width = Math.round(r.progress * 100) + '%';
      bar.appendChild(fill); p.appendChild(bar);
      p.appendChild(document.createTextNode(' ' + (r.succeeded + r.failed) + '/' + r.total));
      cell(tr, String(r.succeeded)); cell(tr, String(r.failed)); cell(tr, String(r.skipped));
      cell(tr, r.brandsPerSecond.toFixed(2) + ' brands/s');
      cell(tr, money(r.costUsd) + (r.budgetUsd === null ? '' : ' / ' + money(r.budgetUsd)), 'cost');
      cell(tr, fairShare(r), 'share');
      cell(tr, r.source, 'muted');
      body.appendChild(tr);
    }
    const limits = await (await fetch('/api/limits')).json();
    const lb = document.querySelector('#limits tbody');
    lb.replaceChildren();
    for (const [provider, s] of Object.entries(limits)) {
      const tr = document.createElement('tr');
      cell(tr, provider); cell(tr, String(s.calls)); cell(tr, String(s.activeLeases)); cell(tr, String(s.tokensInWindow));
      cell(tr, Math.round(s.avgWaitMs) + ' ms');
      cell(tr, Object.entries(s.deferrals).filter(([, n]) => n > 0).map(([k, n]) => k + ' ' + n).join(', ') || '0');
      cell(tr, s.cooldownUntilMs > Date.now() ? new Date(s.cooldownUntilMs).toLocaleTimeString() : '-');
      lb.appendChild(tr);
    }
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (err) {
    document.getElementById('updated').textContent = 'update failed: ' + err;
  }
}
refresh();
setInterval(refresh, 2000);
`;
