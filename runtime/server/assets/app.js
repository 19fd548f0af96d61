// Forgecast dashboard. Every view reads its JSON API twin and renders it. Text from GitHub (repository names,
// logins, script errors) is untrusted: it only ever reaches the page through textContent, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2f6fde", "#e07b24", "#2a9d60", "#c2407a", "#7b61c9", "#b8a21a", "#8a94a6"];
const REFRESH_MS = 2000;

// Views in navigation order. A view is an id (the section `view-<id>`), a title, the API it shows, and a
// render function; adding a view means adding a section to index.html and an entry here.
const VIEWS = [
  { id: "live", title: "Live", api: ["/api/live"], render: renderLive },
  { id: "scripts", title: "Scripts", api: ["/api/scripts", "/api/scripts/reloads"], render: renderScripts },
];

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
      const td = el("td", cell.text, cell.attrs);
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
  testid("ready").textContent = live.health.ready ? "accepting writes" : "failing, retrying";
  testid("top-since").textContent = `${live.top_since.replace("T", " ").replace("Z", "")} UTC`;
  renderPerMinute(document.getElementById("per-minute"), document.getElementById("per-minute-legend"), live.minutes, live.series);
  renderTop("top-repos", live.top_repos);
  renderTop("top-languages", live.top_languages);
  renderTop("top-orgs", live.top_orgs);
}

function when(iso) {
  return iso ? iso.replace("T", " ").replace("Z", " UTC") : "–";
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
    { text: when(new Date(r.at * 1000).toISOString().replace(/\.\d+Z$/, "Z")) },
    { text: r.script },
    { text: r.old_hash || "–" },
    { text: r.new_hash },
    { text: r.accepted ? "live" : "refused", className: r.accepted ? "status-live" : "refused" },
    { text: r.reason || "" },
  ]));
}

async function refresh(view) {
  try {
    const responses = await Promise.all(view.api.map((url) => fetch(url, { cache: "no-store" })));
    for (const r of responses) if (!r.ok) throw new Error(`${r.url} answered ${r.status}`);
    view.render(await Promise.all(responses.map((r) => r.json())));
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
  timer = setInterval(() => refresh(view), REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  const nav = document.getElementById("nav");
  for (const v of VIEWS) nav.append(el("a", v.title, { href: `#${v.id}`, id: `nav-${v.id}` }));
  window.addEventListener("hashchange", show);
  show();
});
