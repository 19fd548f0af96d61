// Forgecast dashboard. Every view reads its JSON API twin and renders it. Text from GitHub (repository names,
// logins, script errors) is untrusted: it only ever reaches the page through textContent, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2f6fde", "#e07b24", "#2a9d60", "#c2407a", "#7b61c9", "#b8a21a", "#8a94a6", "#17a2b8", "#8c564b", "#1d2330"];
const REFRESH_MS = 2000;

// Views in navigation order. A view is an id (the section `view-<id>`), a title, the API it shows, and a
// render function (which may fetch more and return a promise); adding a view means adding a section to index.html
// and an entry here.
const VIEWS = [
  { id: "live", title: "Live", api: () => ["/api/live"], render: renderLive },
  { id: "trends", title: "Trends", api: () => [trendsUrl()], render: renderTrends, still: true },
  { id: "sentiment", title: "Sentiment", api: () => [sentimentUrl(), "/api/sentiment/souring?limit=10", "/api/sentiment/recent?label=negative&limit=20"], render: renderSentiment },
  { id: "models", title: "Models", api: () => ["/api/models"], render: renderModels },
  { id: "scripts", title: "Scripts", api: () => ["/api/scripts", "/api/scripts/reloads"], render: renderScripts },
];

// What the trends view shows; changed by its controls.
const trendsState = { dimension: "language", metric: "PullRequestEvent", granularity: "quarter", from: 2012, keys: null };

// What the sentiment view shows; changed by its controls.
const sentimentState = { scope: "all", key: "", granularity: "day" };

let timer = null;

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function number(n) {
  return Number(n).toLocaleString("en-US");
}

function hhmm(iso) {
  return iso.slice(11, 16);
}

function testid(id) {
  return document.querySelector(`[data-testid="${id}"]`);
}

function fillRows(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows.map((cells) => {
    const tr = el("tr");
    for (const cell of cells) {
      const td = el("td", cell.node ? null : cell.text, cell.attrs);
      if (cell.node) td.append(cell.node);
      if (cell.className) td.className = cell.className;
      tr.append(td);
    }
    return tr;
  }));
}

function renderTop(id, entries) {
  fillRows(testid(id), entries.map((e) => [{ text: e.key, className: "key" }, { text: number(e.count), className: "num count" }]));
}

function showTooltip(event, text) {
  const tip = document.getElementById("tooltip");
  tip.textContent = text;
  tip.hidden = false;
  tip.style.left = `${event.clientX + 12}px`;
  tip.style.top = `${event.clientY + 12}px`;
}

function hideTooltip() {
  document.getElementById("tooltip").hidden = true;
}

// Stacked bars: one bar per minute, one segment per event type.
function renderPerMinute(container, legend, minutes, series) {
  const width = 960, height = 260, left = 64, right = 8, top = 8, bottom = 28;
  const totals = minutes.map((_, i) => series.reduce((sum, s) => sum + s.counts[i], 0));
  const max = Math.max(1, ...totals);
  const plotW = width - left - right, plotH = height - top - bottom;
  const barW = plotW / minutes.length;
  const y = (v) => top + plotH - (v / max) * plotH;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, "data-testid": "per-minute-chart" });

  for (const v of [0, Math.round(max / 2), max]) {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "axis" }));
    chart.append(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, number(v)));
  }
  chart.append(svg("text", { x: 12, y: top + plotH / 2, transform: `rotate(-90 12 ${top + plotH / 2})`, "text-anchor": "middle" }, "events / minute"));
  minutes.forEach((m, i) => {
    if (i % 10 === 0 || i === minutes.length - 1) {
      chart.append(svg("text", { x: left + i * barW + barW / 2, y: height - 8, "text-anchor": "middle" }, hhmm(m)));
    }
  });

  minutes.forEach((m, i) => {
    let base = 0;
    series.forEach((s, k) => {
      const count = s.counts[i];
      if (count === 0) return;
      const rect = svg("rect", {
        x: left + i * barW + 0.5, width: Math.max(barW - 1, 1),
        y: y(base + count), height: y(base) - y(base + count),
        fill: COLORS[k % COLORS.length],
        "data-series": s.name, "data-minute": m, "data-count": count,
      });
      const label = `${s.name} at ${hhmm(m)} UTC: ${number(count)} events`;
      rect.append(svg("title", {}, label));
      rect.addEventListener("mousemove", (e) => showTooltip(e, label));
      rect.addEventListener("mouseleave", hideTooltip);
      chart.append(rect);
      base += count;
    });
  });
  container.replaceChildren(chart);

  legend.replaceChildren(...series.map((s, k) => {
    const item = el("li", null, { "data-series": s.name });
    const swatch = el("span", null, { class: "swatch" });
    swatch.style.background = COLORS[k % COLORS.length];
    const total = s.counts.reduce((a, b) => a + b, 0);
    item.append(swatch, el("span", s.name), el("span", `(${number(total)})`, { class: "muted" }));
    return item;
  }));
}

function renderLive([live]) {
  testid("total").textContent = number(live.total);
  testid("events-stored").textContent = number(live.health.events_stored);
  testid("dead-letters").textContent = number(live.health.dead_letters);
  testid("lag").textContent = number(live.health.lag);
  testid("scripts-live").textContent = number(live.health.scripts_live);
  testid("scripts-refused").textContent = number(live.health.scripts_refused);
  testid("reloads-accepted").textContent = number(live.health.reloads_accepted);
  testid("reloads-refused").textContent = number(live.health.reloads_refused);
  testid("ready").textContent = live.health.ready ? "accepting writes" : "failing, retrying";
  testid("top-since").textContent = `${live.top_since.replace("T", " ").replace("Z", "")} UTC`;
  renderPerMinute(document.getElementById("per-minute"), document.getElementById("per-minute-legend"), live.minutes, live.series);
  renderTop("top-repos", live.top_repos);
  renderTop("top-languages", live.top_languages);
  renderTop("top-orgs", live.top_orgs);
  renderTop("top-topics", live.top_topics);
}

function trendsUrl() {
  const q = new URLSearchParams({ dimension: trendsState.dimension, granularity: trendsState.granularity, from: trendsState.from });
  if (trendsState.dimension === "language") q.set("metric", trendsState.metric);
  if (trendsState.keys) q.set("keys", trendsState.keys.join(","));
  return `/api/trends?${q}`;
}

// Lines over labelled x positions; `lines` are { name, values (number or null) }.
// `ahead`, optional: per line name, its forecast { periods, shares, lower80, upper80 }, drawn dashed after the
// line with the 80 % band shaded; periods not among `labels` are added after them.
function renderLines(container, legend, labels, lines, unit, testid, width = 960, ahead = null) {
  const height = 280, left = 56, right = 28, top = 8, bottom = 28;
  if (ahead) {
    labels = [...labels];
    for (const f of Object.values(ahead)) for (const p of f.periods) if (!labels.includes(p)) labels.push(p);
  }
  const values = lines.flatMap((l) => l.values).filter((v) => v !== null)
    .concat(ahead ? Object.values(ahead).flatMap((f) => f.upper80) : []);
  const max = Math.max(1, ...values);
  const plotW = width - left - right, plotH = height - top - bottom;
  const x = (i) => left + (labels.length < 2 ? plotW / 2 : (i * plotW) / (labels.length - 1));
  const y = (v) => top + plotH - (v / max) * plotH;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, "data-testid": testid });
  for (const v of [0, max / 2, max]) {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "axis" }));
    chart.append(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, `${v.toFixed(1)}`));
  }
  chart.append(svg("text", { x: 12, y: top + plotH / 2, transform: `rotate(-90 12 ${top + plotH / 2})`, "text-anchor": "middle" }, unit));
  const step = Math.max(1, Math.ceil(labels.length / 12));
  labels.forEach((label, i) => {
    // The last label too, unless it would overlap the one before it.
    const last = i === labels.length - 1 && i % step >= Math.ceil(step / 2);
    if (i % step === 0 || last || labels.length === 1) chart.append(svg("text", { x: x(i), y: height - 8, "text-anchor": "middle" }, label));
  });
  lines.forEach((line, k) => {
    const color = COLORS[k % COLORS.length];
    const points = line.values.map((v, i) => (v === null ? null : [x(i), y(v)]));
    let path = "";
    points.forEach((p, i) => {
      if (p) path += `${path && points[i - 1] ? "L" : "M"}${p[0].toFixed(1)},${p[1].toFixed(1)} `;
    });
    chart.append(svg("path", { d: path, fill: "none", stroke: color, "stroke-width": 2 }));
    points.forEach((p, i) => {
      if (!p) return;
      const dot = svg("circle", { cx: p[0], cy: p[1], r: 3, fill: color, "data-series": line.name, "data-label": labels[i], "data-value": line.values[i] });
      const count = line.counts ? ` (${number(line.counts[i])} events)` : "";
      const text = `${line.name}, ${labels[i]}: ${line.values[i]} ${unit}${count}`;
      dot.append(svg("title", {}, text));
      dot.addEventListener("mousemove", (e) => showTooltip(e, text));
      dot.addEventListener("mouseleave", hideTooltip);
      chart.append(dot);
    });
    const f = ahead && ahead[line.name];
    if (f) {
      const at = f.periods.map((p) => labels.indexOf(p));
      const last = line.values.length - 1 - [...line.values].reverse().findIndex((v) => v !== null);
      const band = at.map((i, j) => `${x(i).toFixed(1)},${y(f.upper80[j]).toFixed(1)}`)
        .concat(at.map((i, j) => `${x(i).toFixed(1)},${y(f.lower80[j]).toFixed(1)}`).reverse());
      chart.append(svg("polygon", { points: band.join(" "), fill: color, "fill-opacity": 0.15, stroke: "none", "data-band": line.name }));
      const start = last >= 0 && line.values[last] !== null ? `M${x(last).toFixed(1)},${y(line.values[last]).toFixed(1)} L` : "M";
      const path = start + at.map((i, j) => `${x(i).toFixed(1)},${y(f.shares[j]).toFixed(1)}`).join(" L");
      chart.append(svg("path", { d: path, fill: "none", stroke: color, "stroke-width": 2, "stroke-dasharray": "5 4", "data-forecast": line.name }));
      at.forEach((i, j) => {
        const dot = svg("circle", { cx: x(i), cy: y(f.shares[j]), r: 2.5, fill: "#fff", stroke: color, "data-forecast-series": line.name, "data-label": labels[i], "data-value": f.shares[j] });
        const text = `${line.name}, ${labels[i]} (forecast): ${f.shares[j]} ${unit}, 80 % ${f.lower80[j]}–${f.upper80[j]}`;
        dot.append(svg("title", {}, text));
        dot.addEventListener("mousemove", (e) => showTooltip(e, text));
        dot.addEventListener("mouseleave", hideTooltip);
        chart.append(dot);
      });
    }
  });
  container.replaceChildren(chart);
  legend.replaceChildren(...lines.map((line, k) => {
    const item = el("li", null, { "data-series": line.name });
    const swatch = el("span", null, { class: "swatch" });
    swatch.style.background = COLORS[k % COLORS.length];
    item.append(swatch, el("span", line.name));
    return item;
  }));
}

function renderTrends([trends]) {
  const metricNames = { PullRequestEvent: "pull requests", PushEvent: "pushes", WatchEvent: "stars", IssuesEvent: "issues" };
  testid("trends-metric-name").textContent = trends.metric ? metricNames[trends.metric] || trends.metric : "events";
  testid("trends-dimension-name").textContent = { type: "event type", topic: "topic" }[trends.dimension] || "language";
  document.getElementById("trends-metric").disabled = trends.dimension !== "language";
  const drawTrends = (ahead) => renderLines(document.getElementById("trends-chart"), document.getElementById("trends-legend"), trends.periods,
    trends.series.map((s) => ({ name: s.key, values: s.shares, counts: s.counts })), "% share", "trends-chart", 960, ahead);
  drawTrends(null);
  renderForecast(trends, drawTrends);
  renderRepoGrowth();

  const chosen = new Set(trends.series.map((s) => s.key));
  const names = [...new Set([...trends.available, ...chosen])];
  testid("trends-languages").replaceChildren(...names.map((name) => {
    const box = el("input", null, { type: "checkbox", value: name });
    box.checked = chosen.has(name);
    box.addEventListener("change", () => {
      const picked = [...document.querySelectorAll("#trends-languages input:checked")].map((b) => b.value);
      trendsState.keys = picked.length ? picked : null;
      refresh(VIEWS.find((v) => v.id === "trends"));
    });
    const label = el("label");
    label.append(box, document.createTextNode(` ${name}`));
    return label;
  }));

  const overlay = trends.overlay;
  testid("overlay-language").textContent = overlay ? overlay.key : "–";
  const years = overlay ? overlay.years : [];
  renderLines(document.getElementById("overlay-chart"), document.getElementById("overlay-legend"), overlay ? overlay.slots : [],
    years.map((y) => ({ name: String(y.year), values: y.shares })), "% share", "overlay-chart", 480);

  const growth = trends.growth;
  testid("growth-period").textContent = growth ? growth.period : "–";
  testid("growth-previous").textContent = growth ? growth.previous : "–";
  const rows = growth ? [...growth.risers, ...growth.fallers] : [];
  fillRows(testid("growth"), rows.map((r) => [
    { text: r.key, className: "key" },
    { text: `${r.share.toFixed(2)}%`, className: "num" },
    { text: `${r.previous_share.toFixed(2)}%`, className: "num" },
    { text: `${r.change > 0 ? "+" : ""}${r.change.toFixed(2)}`, className: `num change ${r.change > 0 ? "rise" : "fall"}` },
  ]));
}

function sentimentUrl() {
  const q = new URLSearchParams({ granularity: sentimentState.granularity, scope: sentimentState.scope });
  if (sentimentState.scope !== "all") q.set("key", sentimentState.key);
  return `/api/sentiment?${q}`;
}

function renderSentiment([sentiment, souring, recent]) {
  const totals = { negative: 0, neutral: 0, positive: 0 };
  for (const b of sentiment.series) for (const label of sentiment.labels) totals[label] += b.counts[label];
  const all = totals.negative + totals.neutral + totals.positive;
  testid("sentiment-total").textContent = number(all);
  for (const label of sentiment.labels) {
    testid(`sentiment-${label}`).textContent = all ? `${((100 * totals[label]) / all).toFixed(1)}%` : "–";
  }
  testid("sentiment-key").textContent = sentiment.scope === "all" ? "every discussion" : sentiment.key;
  const choice = document.getElementById("sentiment-language");
  const current = sentimentState.scope === "language" ? sentimentState.key : choice.value;
  choice.replaceChildren(...sentiment.languages.map((l) => el("option", l, { value: l })));
  if (current && sentiment.languages.includes(current)) choice.value = current;
  const labels = sentiment.series.map((b) => b.bucket.slice(0, sentiment.granularity === "month" ? 7 : 10));
  renderLines(document.getElementById("sentiment-chart"), document.getElementById("sentiment-legend"), labels,
    sentiment.labels.map((label) => ({ name: label, values: sentiment.series.map((b) => b.shares[label]), counts: sentiment.series.map((b) => b.total) })),
    "% of texts", "sentiment-chart");
  testid("souring-month").textContent = souring.month || "–";
  fillRows(testid("souring"), souring.repos.map((r) => [
    { text: r.repo, className: "key" },
    { text: `${r.negative_share.toFixed(2)}%`, className: "num" },
    { text: `${r.past_negative_share.toFixed(2)}%`, className: "num" },
    { text: `+${r.change.toFixed(2)}`, className: "num change fall" },
    { text: number(r.count), className: "num" },
  ]));
  fillRows(testid("recent-negative"), recent.predictions.map((p) => [
    { text: when(p.at) },
    { text: p.repo, className: "key" },
    { text: p.text, className: "text" },
    { text: p.scores[p.label].toFixed(2), className: "num" },
  ]));
}

// Where the compared series are heading: `/api/forecast` for the same series, drawn after them, and the table of
// the expected changes over the next year.
async function renderForecast(trends, draw) {
  const status = testid("forecast-status");
  const keys = trends.series.map((s) => s.key);
  if (!keys.length) return;
  const q = new URLSearchParams({ dimension: trends.dimension, granularity: trends.granularity, keys: keys.join(",") });
  if (trends.metric) q.set("metric", trends.metric);
  const perYear = { quarter: 4, month: 12, year: 1 }[trends.granularity] || 4;
  q.set("horizon", perYear);
  const response = await fetch(`/api/forecast?${q}`, { cache: "no-store" });
  if (!response.ok) {
    status.textContent = `No forecast: ${(await response.text()).trim()}`;
    testid("forecast-as-of").textContent = "–";
    fillRows(testid("forecast-table"), []);
    return;
  }
  const forecast = await response.json();
  const ahead = Object.fromEntries(forecast.series.map((s) => [s.key, s.forecast]));
  draw(ahead);
  status.textContent = `Forecast by ${forecast.model.method}${forecast.model.version ? ` (version ${forecast.model.version})` : ""} from the history up to ${forecast.as_of}; dashed, with the 80 % interval shaded.`;
  testid("forecast-as-of").textContent = forecast.as_of;
  const rows = forecast.series.map((s) => {
    const now = s.history.shares[s.history.shares.length - 1];
    const j = s.forecast.shares.length - 1;
    return { key: s.key, now, then: s.forecast.shares[j], period: s.forecast.periods[j], lower: s.forecast.lower80[j], upper: s.forecast.upper80[j], change: Math.round((s.forecast.shares[j] - now) * 100) / 100 };
  });
  rows.sort((a, b) => b.change - a.change || a.key.localeCompare(b.key));
  fillRows(testid("forecast-table"), rows.map((r) => [
    { text: r.key, className: "key" },
    { text: `${r.now.toFixed(2)}%`, className: "num" },
    { text: `${r.then.toFixed(2)}%`, className: "num" },
    { text: `${r.lower.toFixed(2)}–${r.upper.toFixed(2)}%`, className: "num" },
    { text: `${r.change > 0 ? "+" : ""}${r.change.toFixed(2)}`, className: `num change ${r.change > 0 ? "rise" : r.change < 0 ? "fall" : ""}` },
  ]));
}

// The most starred repositories expected to grow fastest over the next year (`/api/forecast/repos`).
async function renderRepoGrowth() {
  const response = await fetch("/api/forecast/repos?horizon=2&limit=5", { cache: "no-store" });
  if (!response.ok) return;
  const growth = await response.json();
  testid("growth-as-of").textContent = growth.as_of;
  const last = growth.relative.length ? growth.relative[0] : null;
  testid("growth-horizon").textContent = last ? "two half-years" : "–";
  fillRows(testid("repo-growth"), growth.relative.map((r) => [
    { text: r.repo, className: "key" },
    { text: number(r.stars), className: "num" },
    { text: number(Math.round(r.expected)), className: "num" },
    { text: `+${r.gain_percent.toFixed(2)}%`, className: "num change rise" },
  ]));
}

function when(iso) {
  return iso ? iso.replace("T", " ").replace("Z", " UTC") : "–";
}

// Unix seconds as `when` shows them.
function whenUnix(unix) {
  return when(new Date(unix * 1000).toISOString().replace(/\.\d+Z$/, "Z"));
}

// Unix seconds as a UTC date.
function day(unix) {
  return new Date(unix * 1000).toISOString().slice(0, 10);
}

function renderScripts([scripts, reloads]) {
  fillRows(testid("scripts"), scripts.map((s) => [
    { text: s.id },
    { text: s.status, className: `status-${s.status}` },
    { text: s.hash || "–" },
    { text: when(s.loaded_at) },
    { text: s.last_refusal ? `${when(s.last_refusal.at)} (${s.last_refusal.hash}): ${s.last_refusal.reason}` : "–", className: s.last_refusal ? "refused" : "" },
  ]));
  fillRows(testid("reloads"), reloads.map((r) => [
    { text: whenUnix(r.at) },
    { text: r.script },
    { text: r.old_hash || "–" },
    { text: r.new_hash },
    { text: r.accepted ? "live" : "refused", className: r.accepted ? "status-live" : "refused" },
    { text: r.reason || "" },
  ]));
}

// The models view: `/api/models`, then each model's evaluations, decisions and drift, rendered once all arrived.
// Newest first, at most this many retrain decisions per model.
const DECISIONS_SHOWN = 20;
// The usual reading of the population stability index: from 0.1 a moderate shift, from 0.25 a major one.
const PSI_MODERATE = 0.1, PSI_MAJOR = 0.25;
// Refreshes of the models view started and rendered: a slow answer never replaces a newer one on the page.
let modelsStarted = 0, modelsRendered = 0;

// GETs JSON; with `missing`, a 404 is `null` (a route or figures that do not exist yet).
async function getJson(url, missing = false) {
  const response = await fetch(url, { cache: "no-store" });
  if (missing && response.status === 404) return null;
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

// A figure with three decimals, or "–" for none (the API writes a figure that is not a number as null).
function fixed(value, digits = 3) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

// A table with its header; `rows` as `fillRows` takes them.
function table(id, headers, rows) {
  const head = el("tr");
  for (const [text, className] of headers) head.append(el("th", text, className ? { class: className } : {}));
  const node = el("table", null, { "data-testid": id });
  node.append(el("thead"), el("tbody"));
  node.tHead.append(head);
  fillRows(node, rows);
  return node;
}

async function renderModels([models]) {
  const started = ++modelsStarted;
  const shown = await Promise.all(models.map(async (model) => {
    const base = `/api/models/${encodeURIComponent(model.name)}`;
    const [evaluations, decisions, drift] = await Promise.all([
      getJson(`${base}/evaluations`), getJson(`${base}/decisions`), getJson(`${base}/drift`, true),
    ]);
    return { model, evaluations, decisions, drift };
  }));
  if (started < modelsRendered) return;
  modelsRendered = started;
  const cards = shown.map(modelCard);
  document.getElementById("models-list").replaceChildren(...(cards.length ? cards : [el("p", "No model is registered yet.", { class: "muted" })]));
}

function modelCard({ model, evaluations, decisions, drift }) {
  const card = el("article", null, { class: "model", "data-model": model.name });
  const title = el("h2");
  title.append(el("span", model.name, { class: "model-name" }),
    el("span", model.champion ? ` champion v${model.champion}` : " no champion", { class: "muted" }));
  card.append(title, versionsTable(model.versions));
  const streaming = evaluations.length > 0 || decisions.length > 0;
  if (streaming) {
    const latest = evaluations[evaluations.length - 1];
    const side = el("div");
    side.append(el("h3", "Latest window"), latest ? latestWindow(latest) : el("p", "No window evaluated yet.", { class: "muted" }));
    const row = el("div", null, { class: "model-row" });
    row.append(aucChart(evaluations, decisions), side);
    card.append(row, el("h3", `Retrain decisions (newest first, at most ${DECISIONS_SHOWN})`), decisionsTable(decisions));
  }
  const windows = drift && Array.isArray(drift.windows) ? drift.windows : [];
  if (windows.length) {
    card.append(...driftTable(windows[windows.length - 1]));
  } else if (streaming) {
    card.append(el("h3", "Drift"), el("p", "No drift figures yet.", { class: "muted", "data-testid": "drift-status" }));
  }
  return card;
}

// Every version, newest first, with the figures measured when it was trained.
function versionsTable(versions) {
  return table("model-versions", [["Version"], ["Role"], ["Created (UTC)"], ["Metrics"], ["Training"]],
    [...versions].reverse().map((v) => {
      const names = Object.keys(v.metrics || {}).filter((k) => typeof v.metrics[k] === "number").sort();
      const list = el("ul", null, { class: "metrics" });
      for (const name of names) {
        const item = el("li");
        item.append(el("span", name, { class: "metric-name" }), document.createTextNode(" "), el("span", fixed(v.metrics[name]), { class: "metric-value" }));
        list.append(item);
      }
      return [
        { text: `v${v.version}` },
        { text: v.alias || "–", className: v.alias ? `role-${v.alias}` : "" },
        { text: day(v.created) },
        names.length ? { node: list } : { text: "–" },
        { text: v.training, className: "text" },
      ];
    }));
}

// The figures of one evaluation window, one per row.
function latestWindow(e) {
  return table("latest-window", [["Figure"], ["Value", "num"]], [
    ["Labels", `${number(e.first_seq)}–${number(e.last_seq)}`],
    ["Version", `v${e.version}`],
    ["Event time (UTC)", `${day(e.from)} – ${day(e.to)}`],
    ["Scored", number(e.count)],
    ["AUC", fixed(e.auc)],
    ["Log-loss", fixed(e.log_loss)],
    ["Brier", fixed(e.brier)],
    ["Positive rate", fixed(e.positive_rate)],
    ["Label delay (days)", fixed(e.label_delay_days, 1)],
  ].map(([name, value]) => [{ text: name }, { text: value, className: "num" }]));
}

// What came of a retrain: the challenger promoted or rejected, or nothing (no retrain, or no challenger).
function retrainOutcome(result) {
  if (!result || typeof result.challenger !== "number") return { text: "—", attrs: result && result.reason ? { title: result.reason } : {} };
  const detail = `${result.candidate || "online"} challenger, ${result.metric} ${fixed(result.challenger_score)} against the champion's ${fixed(result.champion_score)} (margin ${fixed(result.margin)}): ${result.reason}`;
  return { text: `${result.promoted ? "promoted" : "rejected"} v${result.challenger}`, attrs: { title: detail }, className: result.promoted ? "rise" : "fall" };
}

// What called the policy: a window's end (the schedule) or the change detector's alarm at a label.
function trigger(d) {
  return d.trigger === "alarm" ? `alarm at label ${number(d.window)}` : `window from label ${number(d.window)}`;
}

// The decisions, which the API gives in the order they were taken.
function decisionsTable(decisions) {
  const newest = [...decisions].reverse().slice(0, DECISIONS_SHOWN);
  return table("decisions", [["When (event time)"], ["Called by"], ["Champion"], ["Retrain"], ["Reason"], ["Outcome"]], newest.map((d) => [
    { text: whenUnix(d.at) },
    { text: trigger(d) },
    { text: `v${d.version}` },
    { text: d.retrain ? "yes" : "no", className: d.retrain ? "retrain-yes" : "" },
    { text: d.reason, className: "text" },
    retrainOutcome(d.retrain_result),
  ]));
}

function psiLevel(psi) {
  if (typeof psi !== "number") return { text: "" };
  if (psi >= PSI_MAJOR) return { text: "major", className: "drift-major" };
  if (psi >= PSI_MODERATE) return { text: "moderate", className: "drift-moderate" };
  return { text: "" };
}

// The latest drift window: each feature's PSI and KS against the reference window, largest PSI first, then the
// predictions' own.
function driftTable(w) {
  const heading = el("h3", `Drift in window ${number(w.window)} (${day(w.from)} – ${day(w.to)}, ${number(w.count)} issues) against its reference (${day(w.reference.from)} – ${day(w.reference.to)}, ${number(w.reference.count)})`);
  const psi = (f) => (typeof f.psi === "number" ? f.psi : -1);
  const features = [...w.features].sort((a, b) => psi(b) - psi(a) || (a.feature < b.feature ? -1 : a.feature > b.feature ? 1 : 0));
  const row = (name, kind, figures, className) => {
    const level = psiLevel(figures.psi);
    return [{ text: name, className }, { text: kind }, { text: fixed(figures.psi), className: "num" }, { text: fixed(figures.ks), className: "num" }, level];
  };
  const rows = features.map((f) => row(f.feature, f.kind, f));
  if (w.prediction) rows.push(row("predicted probability", "prediction", w.prediction, "prediction"));
  return [heading, table("drift-table", [["Feature"], ["Kind"], ["PSI", "num"], ["KS", "num"], ["Shift"]], rows)];
}

// The prequential AUC of each window at the event time the window ended, with a dashed mark where the retrain
// policy decided to retrain and a solid one where a challenger was promoted.
function aucChart(evaluations, decisions) {
  const width = 720, height = 260, left = 48, right = 16, top = 8, bottom = 28;
  const plotW = width - left - right, plotH = height - top - bottom;
  const color = COLORS[0], retrainColor = COLORS[1], promotionColor = COLORS[2];
  const times = evaluations.map((e) => e.to).concat(decisions.map((d) => d.at));
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const x = (t) => left + (t1 > t0 ? ((t - t0) / (t1 - t0)) * plotW : plotW / 2);
  const aucs = evaluations.map((e) => e.auc).filter((a) => typeof a === "number");
  const lo = Math.min(0.5, Math.floor(Math.min(0.5, ...aucs) * 10) / 10);
  const hi = Math.max(lo + 0.1, Math.min(1, Math.ceil(Math.max(0.6, ...aucs) * 10) / 10));
  const y = (v) => top + plotH - ((v - lo) / (hi - lo)) * plotH;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, "data-testid": "auc-chart" });
  for (const v of [lo, (lo + hi) / 2, hi]) {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "axis" }));
    chart.append(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(2)));
  }
  if (lo < 0.5) {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(0.5), y2: y(0.5), class: "axis", "stroke-dasharray": "2 3" }));
    chart.append(svg("text", { x: width - right, y: y(0.5) - 4, "text-anchor": "end" }, "chance"));
  }
  chart.append(svg("text", { x: 12, y: top + plotH / 2, transform: `rotate(-90 12 ${top + plotH / 2})`, "text-anchor": "middle" }, "AUC"));
  const ticks = t1 > t0 ? 5 : 0;
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + ((t1 - t0) * i) / Math.max(ticks, 1);
    const anchor = ticks === 0 ? "middle" : i === 0 ? "start" : i === ticks ? "end" : "middle";
    chart.append(svg("text", { x: x(t), y: height - 8, "text-anchor": anchor }, day(Math.round(t))));
  }
  const hover = (node, text) => {
    node.append(svg("title", {}, text));
    node.addEventListener("mousemove", (e) => showTooltip(e, text));
    node.addEventListener("mouseleave", hideTooltip);
  };
  for (const d of decisions) {
    if (d.retrain) {
      const mark = svg("line", { x1: x(d.at), x2: x(d.at), y1: top, y2: top + plotH, stroke: retrainColor, "stroke-width": 1.5, "stroke-dasharray": "4 3", class: "mark-retrain", "data-window": d.window });
      hover(mark, `Retrain decided after the window from label ${d.window} (${whenUnix(d.at)}): ${d.reason}`);
      chart.append(mark);
    }
    const result = d.retrain_result;
    if (result && result.promoted && typeof result.challenger === "number") {
      const mark = svg("line", { x1: x(d.at), x2: x(d.at), y1: top, y2: top + plotH, stroke: promotionColor, "stroke-width": 2.5, class: "mark-promotion", "data-window": d.window, "data-version": result.challenger });
      hover(mark, `v${result.challenger} promoted (${whenUnix(d.at)}): ${result.reason}`);
      chart.append(mark);
    }
  }
  let path = "";
  let previous = false;
  for (const e of evaluations) {
    const scored = typeof e.auc === "number";
    if (scored) path += `${previous ? "L" : "M"}${x(e.to).toFixed(1)},${y(e.auc).toFixed(1)} `;
    previous = scored;
  }
  chart.append(svg("path", { d: path, fill: "none", stroke: color, "stroke-width": 2 }));
  for (const e of evaluations) {
    if (typeof e.auc !== "number") continue;
    const dot = svg("circle", { cx: x(e.to), cy: y(e.auc), r: 3, fill: color, "data-window": e.first_seq, "data-value": e.auc, "data-version": e.version });
    hover(dot, `Labels ${number(e.first_seq)}–${number(e.last_seq)} (v${e.version}), to ${day(e.to)}: AUC ${fixed(e.auc)} over ${number(e.count)}`);
    chart.append(dot);
  }
  const figure = el("figure", null, { class: "chart" });
  const plot = el("div", null, { class: "plot", role: "img", "aria-label": "AUC per evaluation window over time" });
  plot.append(chart);
  const legend = el("ul", null, { class: "legend" });
  for (const [name, swatchColor] of [["AUC per window", color], ["retrain decided", retrainColor], ["challenger promoted", promotionColor]]) {
    const item = el("li");
    const swatch = el("span", null, { class: "swatch" });
    swatch.style.background = swatchColor;
    item.append(swatch, el("span", name));
    legend.append(item);
  }
  figure.append(el("figcaption", "Prequential AUC per window of labels (event time, UTC)"), plot, legend);
  return figure;
}

// Each refresh is timed with the User Timing API (`forgecast:<view>`: fetch to rendered), so the dashboard's
// own speed can be measured in a real browser; only the latest measure per view is kept.
async function refresh(view) {
  const started = performance.now();
  try {
    const responses = await Promise.all(view.api().map((url) => fetch(url, { cache: "no-store" })));
    for (const r of responses) if (!r.ok) throw new Error(`${r.url} answered ${r.status}`);
    await view.render(await Promise.all(responses.map((r) => r.json())));
    performance.clearMeasures(`forgecast:${view.id}`);
    performance.measure(`forgecast:${view.id}`, { start: started, end: performance.now() });
    document.getElementById("updated").textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
  } catch (error) {
    document.getElementById("updated").textContent = `cannot refresh: ${error.message}`;
  }
}

function show() {
  const id = location.hash.slice(1) || VIEWS[0].id;
  const view = VIEWS.find((v) => v.id === id) || VIEWS[0];
  for (const v of VIEWS) {
    document.getElementById(`view-${v.id}`).hidden = v !== view;
    document.getElementById(`nav-${v.id}`).toggleAttribute("aria-current", v === view);
    if (v === view) document.getElementById(`nav-${v.id}`).setAttribute("aria-current", "page");
  }
  clearInterval(timer);
  refresh(view);
  // History changes slowly: views marked `still` refresh when their controls change, not on a timer.
  if (!view.still) timer = setInterval(() => refresh(view), REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  const nav = document.getElementById("nav");
  for (const v of VIEWS) nav.append(el("a", v.title, { href: `#${v.id}`, id: `nav-${v.id}` }));
  window.addEventListener("hashchange", show);
  const trends = () => VIEWS.find((v) => v.id === "trends");
  document.getElementById("trends-dimension").addEventListener("change", (e) => { trendsState.dimension = e.target.value; trendsState.keys = null; refresh(trends()); });
  document.getElementById("trends-metric").addEventListener("change", (e) => { trendsState.metric = e.target.value; trendsState.keys = null; refresh(trends()); });
  document.getElementById("trends-granularity").addEventListener("change", (e) => { trendsState.granularity = e.target.value; refresh(trends()); });
  document.getElementById("trends-from").addEventListener("change", (e) => { trendsState.from = Number(e.target.value) || 2012; refresh(trends()); });
  const sentiment = () => VIEWS.find((v) => v.id === "sentiment");
  const sentimentScope = () => {
    const scope = document.getElementById("sentiment-scope").value;
    document.getElementById("sentiment-language-choice").hidden = scope !== "language";
    document.getElementById("sentiment-repo-choice").hidden = scope !== "repo";
    const key = scope === "language" ? document.getElementById("sentiment-language").value : document.getElementById("sentiment-repo").value.trim();
    // A repository or language not chosen yet: stay on every discussion until there is one.
    Object.assign(sentimentState, key || scope === "all" ? { scope, key } : { scope: "all", key: "" });
    refresh(sentiment());
  };
  document.getElementById("sentiment-scope").addEventListener("change", sentimentScope);
  document.getElementById("sentiment-language").addEventListener("change", sentimentScope);
  document.getElementById("sentiment-repo").addEventListener("change", sentimentScope);
  document.getElementById("sentiment-granularity").addEventListener("change", (e) => { sentimentState.granularity = e.target.value; refresh(sentiment()); });
  show();
});
