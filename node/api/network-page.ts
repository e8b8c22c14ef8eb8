/**
 * The live network page at `GET /` (issue 12): one self-contained HTML document, inline CSS and
 * script, no external asset and no build step (the machine that opens it may be offline). It
 * loads `/v1/network`, `/v1/tasks` and `/v1/models` once, then follows `GET /v1/events`
 * (EventSource, which reconnects by itself), re-reading a task when an event names it.
 *
 * Trust boundary: everything the page shows comes from the network (peer ids, model names,
 * failure reasons): it is written with textContent only, never parsed as HTML, and the
 * Content-Security-Policy admits only this document's own script and style (by hash) and
 * requests to this origin.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { getRoute } from './http-server.js'

const STYLE = `
:root { --bg: #f6f7f9; --card: #fff; --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --ok: #067647; --ok-bg: #dcfae6;
  --warn: #b54708; --warn-bg: #fef0c7; --bad: #b42318; --bad-bg: #fee4e2; --info: #175cd3; --info-bg: #d1e9ff; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
header { background: #101828; color: #fff; padding: 14px 24px; display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
header .meta { color: #d0d5dd; font-size: 13px; }
header code { color: #fff; }
#live { margin-left: auto; font-size: 13px; }
#live::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 6px; background: #f79009; }
#live.on::before { background: #17b26a; }
#live.off::before { background: #f04438; }
main { padding: 20px 24px; display: grid; gap: 20px; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; overflow-x: auto; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 15px; margin: 0 0 10px; }
h2 .count { color: var(--muted); font-weight: normal; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.empty { color: var(--muted); font-style: italic; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.s-certified { color: var(--ok); background: var(--ok-bg); }
.s-pending { color: var(--warn); background: var(--warn-bg); }
.s-no-quorum { color: var(--bad); background: var(--bad-bg); }
.s-unknown, .s-other { color: var(--muted); background: var(--line); }
.role { color: var(--info); background: var(--info-bg); margin-right: 4px; }
.bar { display: inline-block; width: 80px; height: 8px; background: var(--line); border-radius: 4px; vertical-align: middle; margin-right: 6px; overflow: hidden; }
.bar > span { display: block; height: 100%; background: #2e90fa; }
ul.peers { margin: 0; padding-left: 18px; max-height: 220px; overflow-y: auto; }
#log { max-height: 260px; overflow-y: auto; }
#error { display: none; background: var(--bad-bg); color: var(--bad); padding: 8px 24px; }
`

const SCRIPT = `
'use strict'
const MAX_TASKS = 50
const MAX_LOG = 80
const state = { network: null, tasks: new Map(), settled: new Map(), seen: new Map() }
const $ = (id) => document.getElementById(id)

function el (tag, text, cls) {
  const e = document.createElement(tag)
  if (text !== undefined && text !== null) e.textContent = String(text)
  if (cls) e.className = cls
  return e
}
function short (s, n) { s = String(s); n = n || 10; return s.length > n + 4 ? s.slice(0, n) + '…' + s.slice(-4) : s }
function cell (row, text, cls, title) { const td = el('td', text, cls); if (title) td.title = String(title); row.appendChild(td); return td }
function fill (id, rows, empty, cols) {
  const body = $(id).querySelector('tbody')
  body.replaceChildren(...rows)
  if (rows.length === 0) { const tr = el('tr'); const td = el('td', empty, 'empty'); td.colSpan = cols; tr.appendChild(td); body.appendChild(tr) }
}
function badge (status) { return el('span', status, 'badge s-' + (['certified', 'pending', 'no-quorum', 'unknown'].includes(status) ? status : 'other')) }
function showError (msg) { const e = $('error'); e.textContent = msg; e.style.display = msg ? 'block' : 'none' }

async function getJson (path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } })
  if (!res.ok) throw new Error(path + ' answered ' + res.status)
  return await res.json()
}

function renderHeader () {
  const n = state.network
  if (!n) return
  const roles = $('roles'); roles.replaceChildren(...n.roles.map(r => el('span', r, 'badge role')))
  $('peer-id').textContent = n.peerId
  $('version').textContent = n.version
  $('epoch').textContent = n.epoch
  document.title = 'poi ' + n.roles.join('+') + ' ' + short(n.peerId, 8)
}

function signedCounts () {
  const counts = new Map()
  for (const t of state.tasks.values()) for (const s of (t.signers || [])) counts.set(s, (counts.get(s) || 0) + 1)
  return counts
}

function renderOperators () {
  const n = state.network
  if (!n) return
  const counts = signedCounts()
  const rows = n.operators.map(o => {
    const tr = el('tr'); tr.dataset.operator = String(o.index)
    cell(tr, o.index, 'num')
    cell(tr, short(o.address, 12), 'mono', o.address)
    cell(tr, formatEth(o.stake), 'num', o.stake + ' wei')
    const td = cell(tr, '')
    const bar = el('span', '', 'bar'); const fillBar = el('span'); fillBar.style.width = (100 * o.share).toFixed(1) + '%'; bar.appendChild(fillBar)
    td.appendChild(bar); td.appendChild(document.createTextNode((100 * o.share).toFixed(1) + ' %'))
    const rep = o.reputation
    cell(tr, rep ? ('signed ' + rep.signed + ', missed ' + rep.missed + (rep.slashings ? ', slashed ' + rep.slashings : '')) : 'signed ' + String(counts.get(o.index) || 0) + ' of the tasks below', rep ? '' : 'muted')
    return tr
  })
  $('operator-count').textContent = '(' + n.operators.length + ', epoch ' + n.epoch + ')'
  fill('operators', rows, 'no operator set known', 5)
}

function formatEth (wei) {
  try { const w = BigInt(wei); const whole = w / 10n ** 18n; const frac = (w % 10n ** 18n).toString().padStart(18, '0').slice(0, 3).replace(/0+$/, ''); return whole.toString() + (frac ? '.' + frac : '') + ' ETH' } catch { return String(wei) }
}

function renderPeers () {
  const n = state.network
  if (!n) return
  $('peer-count').textContent = '(' + n.peers.length + ')'
  const list = $('peers'); list.replaceChildren(...n.peers.map(p => { const li = el('li', p, 'mono'); li.dataset.peer = p; return li }))
  if (n.peers.length === 0) list.appendChild(el('li', 'no connected peer', 'empty'))
}

function timeToCertificate (t) {
  const seen = t.seenAt ?? state.seen.get(t.taskId)?.seenAt
  const done = t.certifiedAt ?? state.seen.get(t.taskId)?.certifiedAt
  return seen != null && done != null && done >= seen ? (done - seen).toFixed(0) + ' ms' : '—'
}

function renderTasks () {
  const tasks = [...state.tasks.values()].sort((a, b) => (b.order || 0) - (a.order || 0)).slice(0, MAX_TASKS)
  const rows = tasks.map(t => {
    const tr = el('tr'); tr.dataset.taskId = t.taskId; tr.dataset.status = t.status
    cell(tr, short(t.taskId, 12), 'mono', t.taskId)
    const st = cell(tr, ''); st.appendChild(badge(t.status)); if (t.reason) st.title = t.reason
    cell(tr, t.signers && t.signers.length ? t.signers.join(', ') : '—')
    cell(tr, timeToCertificate(t), 'num')
    const s = settlementOf(t)
    cell(tr, s ? s.text : '—', s && s.tx ? 'mono' : '', s && s.tx)
    return tr
  })
  $('task-count').textContent = '(' + state.tasks.size + ')'
  fill('tasks', rows, 'no task seen yet: send one with poi request', 5)
  renderOperators()
  renderSettled()
}

function settlementOf (t) {
  const s = t.settlement || state.settled.get(t.taskId.slice(2))
  if (!s) return null
  if (s.state === 'confirmed' && s.txHash) return { text: short(s.txHash, 10) + (s.gasUsed ? ' · gas ' + s.gasUsed : ''), tx: s.txHash }
  if (s.state === 'settled-by-other') return { text: 'by ' + short(s.settledBy || '?', 8), tx: s.txHash }
  return { text: s.state }
}

function renderSettled () {
  const rows = []
  const ids = new Set([...state.settled.keys()])
  for (const t of state.tasks.values()) if (t.settlement && (t.settlement.state === 'confirmed' || t.settlement.state === 'settled-by-other')) ids.add(t.taskId.slice(2))
  for (const id of ids) {
    const t = state.tasks.get('0x' + id)
    const s = state.settled.get(id) || (t && t.settlement)
    if (!s || (s.state !== 'confirmed' && s.state !== 'settled-by-other')) continue
    const tr = el('tr'); tr.dataset.settled = id
    cell(tr, short('0x' + id, 12), 'mono', '0x' + id)
    cell(tr, s.state === 'confirmed' ? 'this node' : short(s.settledBy || '?', 10), s.state === 'confirmed' ? '' : 'mono', s.settledBy)
    cell(tr, s.txHash ? short(s.txHash, 12) : '—', 'mono', s.txHash)
    cell(tr, s.gasUsed || '—', 'num')
    rows.push(tr)
  }
  $('settled-count').textContent = '(' + rows.length + ')'
  fill('settled', rows, 'none known to this node (aggregators with a chain settle certificates)', 4)
}

function renderModels (models) {
  const rows = models.map(m => {
    const tr = el('tr'); tr.dataset.model = m.modelId
    const mf = m.manifest || {}
    cell(tr, short(m.modelId, 16), 'mono', m.modelId)
    cell(tr, mf.name || '—')
    cell(tr, typeof mf.size === 'number' ? (mf.size / 1024).toFixed(1) + ' KiB' : '—', 'num')
    cell(tr, typeof mf.agreement === 'string' ? mf.agreement : '—')
    cell(tr, mf.owner ? short(mf.owner, 10) : '—', 'mono', mf.owner)
    return tr
  })
  $('model-count').textContent = '(' + models.length + ')'
  fill('models', rows, 'this node holds no model', 5)
}

let order = 0
function putTask (view) {
  const old = state.tasks.get(view.taskId)
  view.order = old ? old.order : ++order
  state.tasks.set(view.taskId, view)
  while (state.tasks.size > MAX_TASKS * 2) { const oldest = [...state.tasks.values()].sort((a, b) => a.order - b.order)[0]; state.tasks.delete(oldest.taskId) }
}

async function refreshTask (taskId) {
  try { putTask(await getJson('/v1/tasks/' + taskId)); renderTasks() } catch (err) { logLine('error', String(err.message || err)) }
}

let networkTimer = null
function refreshNetworkSoon () {
  if (networkTimer) return
  networkTimer = setTimeout(async () => {
    networkTimer = null
    try { state.network = await getJson('/v1/network'); renderHeader(); renderOperators(); renderPeers() } catch (err) { logLine('error', String(err.message || err)) }
  }, 1000)
}

function logLine (name, text) {
  const body = $('log').querySelector('tbody')
  const tr = el('tr'); tr.dataset.event = name
  cell(tr, new Date().toLocaleTimeString(), 'mono')
  cell(tr, name)
  cell(tr, text, 'mono')
  body.prepend(tr)
  while (body.rows.length > MAX_LOG) body.deleteRow(body.rows.length - 1)
}

const TASK_EVENTS = ['task', 'attested', 'certificate', 'certified', 'no-quorum', 'failed', 'evidence']
const RETRY_MS = 5000
function follow () {
  const source = new EventSource('/v1/events')
  let lost = false
  source.addEventListener('open', () => {
    $('live').className = 'on'; $('live').textContent = 'live'
    // The stream has no replay: what happened while it was down is read from the JSON endpoints.
    if (lost) { lost = false; reload() }
  })
  source.addEventListener('error', () => {
    lost = true
    $('live').className = 'off'; $('live').textContent = 'reconnecting…'
    // EventSource retries by itself, except after an answer that is not a stream (a 503 when the node serves too many): then start again.
    if (source.readyState === EventSource.CLOSED) setTimeout(follow, RETRY_MS)
  })
  for (const name of TASK_EVENTS) {
    source.addEventListener(name, (msg) => {
      const e = JSON.parse(msg.data)
      const seen = state.seen.get(e.taskId) || {}
      if (name === 'task') seen.seenAt = seen.seenAt ?? e.at
      if (name === 'certificate' || name === 'certified') seen.certifiedAt = seen.certifiedAt ?? e.at
      state.seen.set(e.taskId, seen)
      if (!state.tasks.has(e.taskId)) putTask({ taskId: e.taskId, status: 'pending', outputRef: null, certificate: null })
      logLine(name, short(e.taskId, 12) + (e.reason ? ' ' + e.reason : ''))
      refreshTask(e.taskId)
    })
  }
  for (const name of ['submitted', 'submission-settled-by-other', 'submission-failed']) {
    source.addEventListener(name, (msg) => {
      const e = JSON.parse(msg.data)
      logLine(name, e.kind + ' ' + short(e.id, 12) + (e.gasUsed ? ' gas ' + e.gasUsed : '') + (e.reason ? ' ' + e.reason : ''))
      if (e.kind !== 'certificate') return
      state.settled.set(e.id, name === 'submitted' ? { state: 'confirmed', txHash: e.txHash, gasUsed: e.gasUsed } : name === 'submission-failed' ? { state: 'failed' } : { state: 'settled-by-other', txHash: e.txHash, settledBy: e.settledBy })
      renderTasks()
    })
  }
  source.addEventListener('mesh', () => { refreshNetworkSoon() })
  for (const name of ['model', 'prefetch-failed', 'rejected', 'duplicate-identity', 'conflict-evidence']) {
    source.addEventListener(name, (msg) => {
      const e = JSON.parse(msg.data)
      logLine(name, e.modelId || e.reason || e.peerId || e.id || '')
      if (name === 'model') getJson('/v1/models').then(m => renderModels(m.models), () => {})
    })
  }
}

async function reload () {
  try {
    const [network, tasks, models] = await Promise.all([getJson('/v1/network'), getJson('/v1/tasks?limit=' + MAX_TASKS), getJson('/v1/models')])
    state.network = network
    for (const t of tasks.tasks.reverse()) putTask(t)
    renderHeader(); renderPeers(); renderTasks(); renderModels(models.models)
    showError('')
  } catch (err) {
    showError('cannot read this node\\'s API: ' + (err.message || err))
  }
}
reload().then(follow)
`

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>poi node</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>poi node</h1>
  <span id="roles"></span>
  <span class="meta">peer <code id="peer-id">…</code></span>
  <span class="meta">version <span id="version">…</span> · epoch <span id="epoch">…</span></span>
  <span id="live">connecting…</span>
</header>
<div id="error" role="alert"></div>
<main>
  <section class="wide">
    <h2>Recent tasks <span class="count" id="task-count"></span></h2>
    <table id="tasks"><thead><tr><th>task</th><th>status</th><th>signers</th><th>time to certificate</th><th>on-chain</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Operator set <span class="count" id="operator-count"></span></h2>
    <table id="operators"><thead><tr><th>#</th><th>address</th><th>stake</th><th>share</th><th>reputation</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Connected peers <span class="count" id="peer-count"></span></h2>
    <ul class="peers" id="peers"></ul>
  </section>
  <section>
    <h2>Certificates settled on-chain <span class="count" id="settled-count"></span></h2>
    <table id="settled"><thead><tr><th>task</th><th>settled by</th><th>transaction</th><th>gas</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Models held <span class="count" id="model-count"></span></h2>
    <table id="models"><thead><tr><th>model id</th><th>name</th><th>size</th><th>agreement</th><th>owner</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="wide">
    <h2>Live events</h2>
    <div id="log"><table><thead><tr><th>time</th><th>event</th><th>detail</th></tr></thead><tbody></tbody></table></div>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`

function sha256 (text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`
}

/** The page: a constant, served as is. */
export const NETWORK_PAGE_HTML = HTML

/**
 * Only this document's own script and style run (by hash, so no 'unsafe-inline'), only this
 * origin is fetched (the JSON endpoints and the event stream), and no other site may frame it.
 */
export const NETWORK_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/** `GET /`: the live network page (a fastify plugin for HttpServerInit.plugins). */
export function networkPageRoutes (): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    getRoute(app, '/', {}, async (_req, reply) => await reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', NETWORK_PAGE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .send(NETWORK_PAGE_HTML))
  }
}
