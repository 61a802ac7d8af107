// labswarm dashboard: plain JS over the JSON API, uPlot (vendored) for the progress chart.
"use strict";

const PAGE = 50;
const LIVE_MS = 5000;   // refresh period while a swarm runs or claims are in flight
const IDLE_MS = 30000;  // otherwise, just look for new activity
const state = { task: "", hardware: "", offset: 0, filters: {}, plot: null, lastSeen: null,
  timer: null, live: false };

const $ = (id) => document.getElementById(id);
// an experiment's page; ids may hold any character ("%", "#", "/"), so always encoded
const hashOf = (id) => `#/e/${encodeURIComponent(id)}`;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, v);
  }
  const response = await fetch(url);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = new Error(body.message || `HTTP ${response.status}`);
    err.status = response.status;
    throw err;
  }
  return body;
}

const fmtMetric = (m) => (m === null || m === undefined ? "—" : Number(m).toFixed(6));
const fmtSd = (x) => (x === null || x === undefined ? "—" : Number(x).toPrecision(4));
const fmtBudget = (b) => (b === null || b === undefined ? "—" : `${Number(b)} s`);
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "");
const short = (s, n) => (s && s.length > n ? s.slice(0, n - 1) + "…" : s || "");
const badge = (status) => el("span", { class: `badge ${status}` }, status);
// A run no proposal made: its stored status is what it measured, not a verdict on a change
// (a re-measure of a kept program is stored "keep"), so the table names its role beside it.
const ROLES = { baseline: "baseline replicate", seed: "imported", confirmation: "confirmation",
  remeasure: "re-measure", short: "short run" };
const roleOf = (e) => ROLES[e.role] || e.role;
const statusCell = (e) => el("td", {}, badge(e.status),
  ...(e.role && e.role !== "experiment" ? [" ", el("span", { class: "role" }, roleOf(e))] : []));

function ago(t) {
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function fill(tbody, rows, empty) {
  tbody.replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 9, class: "muted" }, empty))]));
}

// ---------------------------------------------------------------------------- home

async function loadTasks() {
  const tasks = await api("/api/tasks");
  const select = $("task");
  const wanted = new URLSearchParams(location.search).get("task") || state.task;
  select.replaceChildren(...tasks.data.map((t) => el("option", { value: t }, t)));
  if (!tasks.data.length) select.append(el("option", { value: "" }, "(no experiments yet)"));
  state.task = tasks.data.includes(wanted) ? wanted : tasks.data[0] || "";
  select.value = state.task;
}

async function loadStats() {
  const where = { task: state.task, hardware: state.hardware };
  const [stats, champion, leader] = await Promise.all([
    api("/api/stats", { task: state.task || undefined }),
    state.task ? api("/api/champion", where).catch(() => null) : null,
    state.task ? api("/api/leader", where).catch(() => null) : null,
  ]);
  // the champion is chosen by the mean of its kept runs: show that, with its n; the
  // leader (the best mean however few its runs) too, marked while it is not the champion
  const statsOf = (exp) => (exp
    ? api("/api/program-stats", { ...where, fingerprint: exp.fingerprint }).catch(() => null)
    : null);
  const [championStats, leaderStats] = await Promise.all([statsOf(champion), statsOf(leader)]);
  const meanOf = (s) => (s && s.mean !== null ? `${fmtMetric(s.mean)} (n=${s.n})` : "—");
  const leaderIsChampion = leader && champion && leader.fingerprint === champion.fingerprint;
  const by = stats.by_status || {};
  const cards = [
    ["experiments", stats.total],
    // a verdict's keeps; replicates and re-measures are recorded keep when they ran
    ["kept changes", stats.kept_changes],
    ["discarded", by.discard || 0],
    ["crash / timeout", (by.crash || 0) + (by.timeout || 0)],
    ["keep rate", stats.keep_rate === null ? "—" : `${(100 * stats.keep_rate).toFixed(1)} %`],
    ["per hour", stats.experiments_per_hour === null ? "—"
      : stats.experiments_per_hour.toFixed(1)],
    ["duplicates refused", stats.duplicates_refused],
    ["findings", stats.findings],
    ["champion (mean of its runs)", meanOf(championStats)],
    [leaderIsChampion ? "leader (the champion)" : "leader, unconfirmed (mean of its runs)",
      meanOf(leaderStats)],
  ];
  $("stats").replaceChildren(...cards.map(([label, value]) =>
    el("div", { class: "stat" }, el("b", {}, value), el("span", {}, label))));
  return stats;
}

function drawChart(progress) {
  const pts = progress.data;
  const xs = pts.map((p) => p.index);
  // y range from the bulk of the runs (like progress.png): a few diverged runs would
  // otherwise flatten everything; runs outside the range sit on its edge
  const metrics = pts.map((p) => p.metric).filter((m) => m !== null).sort((a, b) => a - b);
  const q = (f) => (metrics.length ? metrics[Math.min(metrics.length - 1,
    Math.floor(f * (metrics.length - 1)))] : 0);
  const minimize = progress.direction === "minimize";
  // kept: a verdict's keep or a start's replicate (re-measures are recorded keep too)
  const keptVals = pts.filter((p) => p.kept && p.metric !== null).map((p) => p.metric);
  let lo = minimize ? q(0) : Math.min(q(0.1), ...keptVals);
  let hi = minimize ? Math.max(q(0.9), ...keptVals) : q(1);
  if (!(hi > lo)) { lo -= 0.01; hi += 0.01; }
  const pad = (hi - lo) * 0.06;
  const yMin = lo - pad;
  const yMax = hi + pad;
  const clamp = (m) => (m === null ? null : Math.min(yMax, Math.max(yMin, m)));
  const kept = pts.map((p) => (p.kept ? clamp(p.metric) : null));
  const other = pts.map((p) => (!p.kept ? clamp(p.metric) : null));
  const best = pts.map((p) => clamp(p.best));
  // runs without a metric (crash, timeout) sit on the worse edge
  const floor = minimize ? yMax : yMin;
  const failed = pts.map((p) => (p.metric === null && ["crash", "timeout"].includes(p.status)
    ? floor : null));
  // kept_changes: absent from a server older than this page (upgraded while it served)
  const changes = progress.kept_changes === undefined ? ""
    : `, ${progress.kept_changes} kept changes`;
  $("chart-title").textContent = `progress — ${progress.count} experiments${changes}` +
    (progress.truncated ? " (first runs only)" : "") + ` · ${progress.metric_name} ` +
    `(${progress.direction === "minimize" ? "lower" : "higher"} is better)`;
  const container = $("chart");
  const width = Math.max(320, container.clientWidth || 900);
  // each program labelled once (labelled: absent from a server older than this page)
  const labelled = pts.filter((p) => (p.labelled === undefined ? p.is_best : p.labelled));
  const opts = {
    width, height: 340,
    scales: { x: { time: false }, y: { range: [yMin, yMax] } },
    legend: { show: false },
    axes: [
      { label: "experiment #", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] },
      { label: progress.metric_name, size: 70 },
    ],
    cursor: { drag: { x: true, y: false } },
    series: [
      { label: "#" },
      { label: "discarded", stroke: "#9aa0a6", fill: "#9aa0a6", paths: () => null,
        points: { show: true, size: 5, fill: "#c4c8cc", stroke: "#9aa0a6" } },
      { label: "kept", stroke: "#2ca02c", paths: () => null,
        points: { show: true, size: 9, fill: "#2ca02c", stroke: "#1a6b1a" } },
      { label: "running best", stroke: "#2ca02c", width: 2, points: { show: false },
        paths: uPlot.paths.stepped({ align: 1 }), spanGaps: true },
      { label: "crash/timeout", stroke: "#d62728", paths: () => null,
        points: { show: true, size: 6, fill: "#d62728", stroke: "#d62728" } },
    ],
    hooks: { draw: [(u) => {
      // label each new best with its hypothesis, like autoresearch's progress.png
      const ctx = u.ctx;
      ctx.save();
      ctx.font = `${11 * devicePixelRatio}px sans-serif`;
      ctx.fillStyle = "#1a6b1a";
      ctx.textAlign = "left";
      ctx.textBaseline = "bottom";
      let lastX = -Infinity;
      const boxes = [];  // each label's horizontal extent in CSS pixels (data-label-boxes)
      const right = u.bbox.left + u.bbox.width;
      for (const p of labelled) {
        const x = u.valToPos(p.index, "x", true);
        const y = u.valToPos(clamp(p.metric), "y", true);
        if (x - lastX < 70 * devicePixelRatio) continue;  // keep labels legible
        lastX = x;
        const text = short(p.label || p.hypothesis, 40);  // label: absent from older servers
        const run = ctx.measureText(text).width * Math.cos(Math.PI / 9);
        // a label that would run past the plot's right edge is drawn to the left of its
        // point, rising leftwards (the best runs often end the chart)
        const left = x + 4 * devicePixelRatio + run > right;
        ctx.save();
        ctx.textAlign = left ? "right" : "left";
        ctx.translate(x + (left ? -4 : 4) * devicePixelRatio, y - 6 * devicePixelRatio);
        ctx.rotate(left ? Math.PI / 9 : -Math.PI / 9);
        ctx.fillText(text, 0, 0);
        ctx.restore();
        const x0 = left ? x - 4 * devicePixelRatio - run : x + 4 * devicePixelRatio;
        boxes.push([x0 / devicePixelRatio, (x0 + run) / devicePixelRatio]);
      }
      ctx.restore();
      container.dataset.labelBoxes = JSON.stringify(boxes);
    }], setCursor: [(u) => {
      const p = pts[u.cursor.idx];
      $("chart-hover").textContent = p ? `#${p.index} ${p.status} ${fmtMetric(p.metric)} · ` +
        `${p.agent_id || ""} · ${short(p.hypothesis, 120)}` : "";
    }] },
  };
  const data = [xs, other, kept, best, failed];
  if (state.plot) state.plot.destroy();
  container.replaceChildren();
  state.plot = new uPlot(opts, data, container);
  state.plot.over.addEventListener("click", () => {
    const i = state.plot.cursor.idx;
    if (i !== null && i !== undefined && pts[i]) location.hash = hashOf(pts[i].id);
  });
  container.dataset.points = String(pts.filter((p) => p.metric !== null).length);
}

async function loadChart() {
  if (!state.task) { $("chart").replaceChildren(el("p", { class: "muted" }, "no runs yet")); return; }
  drawChart(await api("/api/progress", { task: state.task, hardware: state.hardware }));
}

// The hardware classes and budgets the task's latest 1000 trusted keep/discard runs used,
// each with its noise (/api/noise: the pooled sd of the programs that ran at least twice).
async function loadNoise() {
  const body = $("noise-body");
  const note = $("noise-note");
  note.hidden = true;
  if (!state.task) { fill(body, [], "no runs yet"); return; }
  const runs = await api("/api/experiments", { task: state.task, hardware: state.hardware,
    trusted: "true", status: ["keep", "discard"], limit: 1000 });
  const places = new Map();
  let unplaced = 0;
  for (const r of runs.data) {
    if (!r.hardware || r.budget_s === null) { unplaced += 1; continue; }
    places.set(JSON.stringify([r.hardware, r.budget_s]), [r.hardware, r.budget_s]);
  }
  const sorted = [...places.values()].sort((a, b) => a[0].localeCompare(b[0]) || a[1] - b[1]);
  const rows = await Promise.all(sorted.map(([hardware, budget]) =>
    api("/api/noise", { task: state.task, hardware, budget }).then((n) => [hardware, budget, n])));
  fill(body, rows.map(([hardware, budget, n]) => el("tr", { class: "noise" },
    el("td", {}, hardware), el("td", { class: "num" }, fmtBudget(budget)),
    el("td", { class: "num sd" }, n.sd === null ? "— (no program ran twice yet)"
      : fmtSd(n.sd) + (n.identical ? " (identical runs: the program ignores its seed)" : "")),
    el("td", { class: "num" }, n.n), el("td", { class: "num" }, n.df),
    el("td", { class: "num" }, n.groups))), "no trusted kept or discarded runs");
  if (unplaced) {
    note.textContent = `${unplaced} run(s) without a recorded hardware class or budget are left out`;
    note.hidden = false;
  }
}

// What the task's trusted runs say (/api/insights): one row per knob move or idea, fresh
// and strongest first, each linking to the traces behind it; imported insights below.
async function loadInsights() {
  const body = $("insights-body");
  const imported = $("insights-imported");
  imported.hidden = true;
  if (!state.task) { fill(body, [], "no runs yet"); return; }
  const report = await api("/api/insights", { task: state.task, hardware: state.hardware })
    .catch((err) => (err.status === 404 ? null : Promise.reject(err)));
  const rows = report ? [...report.knobs, ...report.ideas]
    .sort((a, b) => (a.stale - b.stale) || (b.strength - a.strength)) : [];
  const signed = (x) => (x === null ? "—" : `${x > 0 ? "+" : ""}${Number(x).toFixed(2)} sd`);
  fill(body, rows.slice(0, 30).map((i) => el("tr", { class: `insight${i.stale ? " stale" : ""}` },
    el("td", {}, i.hardware + (i.budget_s === null ? "" : ` · ${fmtBudget(i.budget_s)}`)),
    el("td", { class: "hyp" }, i.kind === "knob"
      ? `${i.knob} ${i.move}${i.value ? ` to ${i.value}` : ""}` : `idea: ${short(i.idea, 120)}`,
    // a whole-configuration run moved other knobs too: its effect is not this knob's alone
    i.kind === "knob" && i.alone < i.n
      ? el("span", { class: "muted" }, ` · ${i.alone} of ${i.n} alone`) : null,
    i.stale ? el("span", { class: "muted" }, " (stale)") : null),
    el("td", { class: "num effect" }, i.effect !== null ? signed(i.effect)
      : i.mean_gain !== null ? `${i.mean_gain > 0 ? "+" : ""}${fmtSd(i.mean_gain)}` : "—"),
    el("td", { class: "num" }, i.effect_sd === null ? "—" : fmtSd(i.effect_sd)),
    el("td", { class: "num" }, `${i.measured}/${i.n}`),
    el("td", { class: "num" }, i.crashes ? `${i.crashes} (${Math.round(100 * i.crash_rate)} %)` : "0"),
    el("td", { class: "links" }, ...i.trace_ids.slice(-5).map((id) =>
      el("a", { href: hashOf(id), title: id }, id.slice(0, 8)))))),
  "no experiment measured yet");
  if (report && report.imported.length) {
    imported.replaceChildren(...report.imported.map((m) =>
      el("li", {}, el("span", { class: "muted" }, `imported from ${m.pack || m.source}: `),
        `${m.insight.kind === "knob" ? `${m.insight.knob} ${m.insight.move}`
          : short(m.insight.idea, 100)} — ${signed(m.insight.effect)} over ${m.insight.n} run(s)`)));
    imported.hidden = false;
  }
}

async function loadClaims() {
  const claims = await api("/api/claims", { task: state.task || undefined });
  $("claims-count").textContent = `(${claims.count})`;
  fill($("claims-body"), claims.data.map((c) => el("tr", {},
    el("td", {}, c.agent_id || "—"), el("td", { class: "hyp" }, short(c.hypothesis, 140)),
    el("td", { class: "num" }, ago(c.created_at)))), "nothing running");
  return claims;
}

async function loadAgents() {
  const swarms = await api("/api/swarms", { task: state.task || undefined });
  const running = new Map(swarms.data.map((s) => [s.id, s.status === "running"]));
  const agents = await api("/api/agents");
  const mine = agents.data.filter((a) => running.has(a.swarm_id));
  // every swarm names its agents agent-0, agent-1, ...: with several swarms on the task
  // (machines sharing one memory), a row names its swarm too
  const several = new Set(mine.map((a) => a.swarm_id)).size > 1;
  fill($("agents-body"), mine.map((a) => {
    // an agent whose swarm ended is stopped, whatever it reported last
    const stopped = a.status === "stopped" || !running.get(a.swarm_id);
    return el("tr", { class: stopped ? "agent stopped" : "agent", "data-status": stopped ? "stopped" : a.status },
      el("td", {}, several ? a.id : a.name),  // id: "<swarm>/<name>"
      el("td", {}, stopped ? "stopped" : a.status), el("td", {}, a.device),
      el("td", { class: "num" }, a.experiments),
      el("td", { class: "hyp" }, stopped ? "—" : short(a.hypothesis, 100)));
  }), "no agents");
  return swarms;
}

function readFilters() {
  const form = $("filters");
  const f = Object.fromEntries(new FormData(form).entries());
  if (f.since) f.since = new Date(f.since + "T00:00:00Z").toISOString();
  return f;
}

// a refused answer with no usable hypothesis (an LLM's text that held no JSON) says why
function unsaid(e) {
  return e.error ? `(no hypothesis: ${e.error})` : "";
}

async function loadExperiments() {
  const params = { ...state.filters, task: state.task || undefined,
    hardware: state.hardware || undefined, limit: PAGE, offset: state.offset };
  $("filter-error").hidden = true;
  let page;
  try {
    page = await api("/api/experiments", params);
  } catch (err) {
    $("filter-error").textContent = err.message;
    $("filter-error").hidden = false;
    return;
  }
  $("exp-count").textContent = `(${page.count})`;
  const first = page.count ? state.offset + 1 : 0;
  $("page-info").textContent = `${first}–${state.offset + page.data.length} of ${page.count}`;
  $("prev").disabled = state.offset === 0;
  $("next").disabled = state.offset + PAGE >= page.count;
  fill($("exp-body"), page.data.map((e, i) => el("tr", {
    class: "clickable", "data-id": e.id, onclick: () => { location.hash = hashOf(e.id); },
  }, el("td", { class: "num" }, state.offset + i + 1), el("td", { class: "num" }, fmtTime(e.created_at)),
  el("td", {}, e.agent_id || "—"), statusCell(e),
  el("td", { class: "num" }, fmtMetric(e.metric)),
  el("td", { class: "hyp" }, short(e.hypothesis || unsaid(e), 160)))), "no experiments match");
}

async function runSearch(q) {
  $("search-results").hidden = false;
  $("search-q").textContent = `“${q}”`;
  const body = $("search-body");
  fill(body, [], "searching…");
  try {
    const hits = await api("/api/search", { q, task: state.task || undefined, limit: 20 });
    fill(body, hits.data.map((h) => {
      const e = h.experiment;
      const row = el("tr", { class: e ? "clickable search-hit" : "search-hit" },
        el("td", { class: "num" }, h.score.toFixed(3)), el("td", {}, h.kind),
        e ? statusCell(e) : el("td", {}, h.finding ? h.finding.outcome : ""),
        el("td", { class: "num" }, e ? fmtMetric(e.metric) : ""),
        el("td", { class: "hyp" }, short(h.text, 200)));
      if (e) row.addEventListener("click", () => { location.hash = hashOf(e.id); });
      return row;
    }), "no results");
  } catch (err) {
    fill(body, [], `search failed: ${err.message}`);
  }
}

async function refreshHome() {
  $("export").href = state.task ? `/api/export?task=${encodeURIComponent(state.task)}` : "/api/export";
  const [stats, claims, swarms] = await Promise.all([loadStats(), loadClaims(), loadAgents(),
    loadChart(), loadExperiments(), loadNoise(), loadInsights()]);
  state.lastSeen = `${stats.total}/${stats.last_at}/${claims.count}`;
  state.live = claims.count > 0 || swarms.data.some((s) => s.status === "running");
}

async function tick() {
  try {
    if (!$("home").hidden) {
      const [stats, claims] = await Promise.all([
        api("/api/stats", { task: state.task || undefined }),
        api("/api/claims", { task: state.task || undefined }),
      ]);
      const seen = `${stats.total}/${stats.last_at}/${claims.count}`;
      if (seen !== state.lastSeen) await refreshHome();
      else if (state.live) await loadClaims();
    }
    $("live").className = state.live ? "live on" : "live";
    $("live").textContent = state.live ? "live" : `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $("live").textContent = `offline: ${err.message}`;
  }
  state.timer = setTimeout(tick, state.live ? LIVE_MS : IDLE_MS);
}

// ---------------------------------------------------------------------------- experiment

function diffView(diff) {
  const pre = $("e-diff");
  if (!diff) { pre.replaceChildren("(no diff: the base program ran unchanged)"); return; }
  pre.replaceChildren(...diff.split("\n").map((line) => {
    let cls = "";
    if (line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ")) cls = "file";
    else if (line.startsWith("@@")) cls = "hunk";
    else if (line.startsWith("+")) cls = "add";
    else if (line.startsWith("-")) cls = "del";
    return el("span", { class: cls }, line + "\n");
  }));
}

function kvRows(obj, fmt) {
  const entries = Object.entries(obj || {});
  return entries.length ? entries.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, fmt(v))))
    : [el("tr", {}, el("td", { class: "muted" }, "none"))];
}

// What the verdict was judged against; older traces did not record it.
function judgedFacts(e) {
  const none = "— (not recorded)";
  const runs = (n) => (n === null || n === undefined ? "? runs" : `${n} run${n === 1 ? "" : "s"}`);
  const over = (m, n) => (m === null || m === undefined ? none : `${fmtMetric(m)} over ${runs(n)}`);
  return [
    ["base", e.parent_id ? el("a", { href: hashOf(e.parent_id) }, short(e.parent_id, 32)) : "— (root)"],
    ["base mean", over(e.base_metric, e.base_n)],
    ["judged mean", over(e.judged_metric, e.judged_n)],
    ["noise sd", e.noise_sd === null || e.noise_sd === undefined ? none
      : `${fmtSd(e.noise_sd)} (${runs(e.noise_n)})`],
    ["threshold", e.threshold === null || e.threshold === undefined ? none : fmtMetric(e.threshold)],
    ["seed", e.seed === null || e.seed === undefined ? none : String(e.seed)],
    ["budget", fmtBudget(e.budget_s)],
    ["hardware", e.hardware || "—"],
  ];
}

function link(e, current) {
  return el("a", { href: hashOf(e.id), class: current ? "current" : "" },
    `${e.status} ${fmtMetric(e.metric)}`);
}

async function showExperiment(id) {
  $("home").hidden = true;
  $("experiment").hidden = false;
  $("e-title").textContent = "loading…";
  let lin;
  try {
    lin = await api(`/api/experiments/${encodeURIComponent(id)}/lineage`);
  } catch (err) {
    $("e-title").textContent = err.status === 404 ? `no experiment ${id}` : err.message;
    for (const x of ["e-facts", "e-judged", "e-reason", "e-lineage", "e-diff", "e-knobs", "e-log",
      "e-resources"]) $(x).replaceChildren();
    return;
  }
  const e = lin.experiment;
  $("e-title").replaceChildren(badge(e.status), ` ${e.metric_name} ${fmtMetric(e.metric)} `,
    el("span", { class: "muted" }, e.id));
  const parent = lin.ancestors.length ? lin.ancestors[lin.ancestors.length - 1] : null;
  const delta = parent && parent.metric !== null && e.metric !== null
    ? (e.metric - parent.metric).toFixed(6) : "—";
  const facts = [["task", e.task], ["agent", e.agent_id || "—"], ["swarm", e.swarm_id || "—"],
    ["role", roleOf(e)], ["vs parent", delta], ["device", `${e.device} ${e.hardware}`],
    ["created", fmtTime(e.created_at)], ["duration", e.duration_s ? `${e.duration_s.toFixed(1)} s` : "—"],
    ["memory", e.memory_gb ? `${e.memory_gb.toFixed(2)} GB` : "—"], ["fingerprint", short(e.fingerprint, 20)],
    ["source", e.source || "—"], ["direction", e.direction]];
  $("e-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("e-judged").replaceChildren(...judgedFacts(e).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("e-reason").textContent = e.reason || "(no reason recorded)";
  $("e-hypothesis").textContent = e.hypothesis || "(no hypothesis)";
  $("e-error").hidden = !e.error;
  $("e-error").textContent = e.error;
  const chain = el("div", { class: "lineage" }, "ancestors: ",
    ...(lin.ancestors.length ? lin.ancestors.map((a) => link(a)) : ["(root)"]), " → ",
    link(e, true));
  const desc = el("div", { class: "lineage" }, `descendants (${lin.descendants.length}): `,
    ...lin.descendants.slice(0, 60).map((d) => link(d)));
  $("e-lineage").replaceChildren(chain, desc);
  diffView(e.diff);
  $("e-knobs").replaceChildren(...kvRows(e.knobs, (v) => (Array.isArray(v) && v.length === 2
    ? `${JSON.stringify(v[0])} → ${JSON.stringify(v[1])}` : JSON.stringify(v))));
  $("e-log").textContent = e.log_tail || "(no log)";
  $("e-resources").replaceChildren(...kvRows(e.resources, (v) => JSON.stringify(v)));
  window.scrollTo(0, 0);
}

// ---------------------------------------------------------------------------- wiring

async function route() {
  const m = location.hash.match(/^#\/e\/(.+)$/);
  if (m) {
    let id;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      id = m[1];  // typed by hand with a bare "%": take it literally
    }
    return showExperiment(id);
  }
  $("experiment").hidden = true;
  $("home").hidden = false;
  await refreshHome();
}

function wire() {
  $("task").addEventListener("change", () => {
    state.task = $("task").value; state.offset = 0; refreshHome();
  });
  $("hardware").addEventListener("change", () => {
    state.hardware = $("hardware").value.trim(); state.offset = 0; refreshHome();
  });
  $("filters").addEventListener("submit", (ev) => {
    ev.preventDefault(); state.filters = readFilters(); state.offset = 0; loadExperiments();
  });
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("q").value.trim();
    if (!q) return;
    if (location.hash && location.hash !== "#/") location.hash = "#/";
    runSearch(q);
  });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadExperiments(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; loadExperiments(); });
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", () => { if (state.plot) state.plot.setSize({
    width: Math.max(320, $("chart").clientWidth), height: 340 }); });
}

async function main() {
  wire();
  try {
    const health = await api("/api/health");
    $("version").textContent = `labswarm ${health.version} · ${health.store} · writes: ${health.writes}`;
    await loadTasks();
    await route();
  } catch (err) {
    $("live").textContent = `error: ${err.message}`;
  }
  document.body.dataset.ready = "1";
  state.timer = setTimeout(tick, state.live ? LIVE_MS : IDLE_MS);
}

main();
