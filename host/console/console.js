// The ops console: a static page over the service's own API. No framework
// and no CDN: one file, served by the binary, talking to /api/v1 with the
// signed-in ops or admin's bearer token, and to /metrics for the numbers.
"use strict";

const $ = (sel) => document.querySelector(sel);
const session = {
  get access() { return sessionStorage.getItem("access_token"); },
  get refresh() { return sessionStorage.getItem("refresh_token"); },
  save(pair) {
    sessionStorage.setItem("access_token", pair.access_token);
    sessionStorage.setItem("refresh_token", pair.refresh_token);
  },
  clear() { sessionStorage.clear(); },
};

// Text through textContent only: nothing the API returns becomes markup.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

// Calls the API; on a 401 tries the refresh token once, then signs out.
async function api(method, path, body, retried = false) {
  const headers = { Authorization: `Bearer ${session.access}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`/api/v1${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && !retried && session.refresh) {
    const r = await fetch("/api/v1/auth/refresh", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh }),
    });
    if (r.ok) { session.save(await r.json()); return api(method, path, body, true); }
    signOut("Your session expired; sign in again.");
  }
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, (data && data.detail) || res.statusText);
  return data;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
const ms = (v) => (v === null || v === undefined ? "–" : v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`);
const badge = (status) => el("span", { class: `status ${status}` }, status);

// ---- sign in / out ---------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  $("#login-error").textContent = "";
  $("#sign-in").disabled = true;
  try {
    const res = await fetch("/api/v1/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: $("#email").value, password: $("#password").value }),
    });
    const data = await res.json();
    if (!res.ok) throw new Error(data.detail || "Sign-in failed");
    session.save(data);
    await enter();
  } catch (e) {
    $("#login-error").textContent = e.message;
  } finally {
    $("#sign-in").disabled = false;
  }
}

async function enter() {
  let me;
  try { me = await api("GET", "/auth/me"); } catch { signOut(); return; }
  if (me.role !== "ops" && me.role !== "admin") {
    signOut(`${me.email} is a ${me.role}: the console needs an ops or admin account.`);
    return;
  }
  $("#who").textContent = `${me.email} (${me.role})`;
  $("#login").hidden = true;
  $("#tabs").hidden = false;
  $("#whoami").hidden = false;
  show("overview");
}

function signOut(message) {
  if (session.refresh) {
    fetch("/api/v1/auth/logout", {
      method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${session.access}` },
      body: JSON.stringify({ refresh_token: session.refresh }),
    }).catch(() => {});
  }
  session.clear();
  stopPolling();
  document.querySelectorAll(".tab").forEach((t) => (t.hidden = true));
  $("#tabs").hidden = true;
  $("#whoami").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

// ---- tabs and polling --------------------------------------------------------

let timer = null;
function stopPolling() { if (timer) clearInterval(timer); timer = null; }

const tabs = {
  overview: { load: loadOverview, every: 5000 },
  jobs: { load: loadJobs, every: 2000 },
  rules: { load: loadRules, every: 10000 },
  bundles: { load: loadBundles, every: 5000 },
};

function show(name) {
  stopPolling();
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((t) => (t.hidden = t.id !== name));
  const tab = tabs[name];
  const tick = () => tab.load().catch((e) => console.warn(name, e));
  tick();
  timer = setInterval(tick, tab.every);
}

// ---- overview: the numbers from /metrics ------------------------------------

// Prometheus text -> [{name, labels, value}].
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)$/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}
const sum = (samples, name, pred = () => true) =>
  samples.filter((s) => s.name === name && pred(s.labels)).reduce((a, s) => a + s.value, 0);

// The q-quantile of the requests observed between two scrapes.
function quantile(prev, cur, q) {
  const buckets = (samples) => {
    const by = new Map();
    for (const s of samples) if (s.name === "http_request_duration_seconds_bucket" && s.labels.route !== "/metrics") {
      by.set(s.labels.le, (by.get(s.labels.le) || 0) + s.value);
    }
    return by;
  };
  const a = buckets(prev), b = buckets(cur);
  const les = [...b.keys()].sort((x, y) => Number(x) - Number(y));
  const total = (b.get("+Inf") || 0) - (a.get("+Inf") || 0);
  if (total <= 0) return null;
  for (const le of les) {
    if ((b.get(le) || 0) - (a.get(le) || 0) >= q * total) return le === "+Inf" ? null : Number(le);
  }
  return null;
}

const history = { rate: [], p95: [], hit: [], rulefail: [] };
let lastScrape = null;

function spark(id, values) {
  const svg = $(id);
  const pts = values.filter((v) => v !== null);
  if (pts.length < 2) { svg.replaceChildren(); return; }
  const max = Math.max(...pts, 1e-9);
  const step = 240 / (values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(46 - ((v || 0) / max) * 44).toFixed(1)}`).join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  svg.replaceChildren(line);
}

async function loadOverview() {
  const text = await (await fetch("/metrics")).text();
  const cur = parseMetrics(text);
  const now = Date.now();
  const gauge = (name) => sum(cur, name);
  $("#k-model").textContent = gauge("model_version");
  $("#k-users").textContent = gauge("active_users");
  $("#k-items").textContent = gauge("active_items");
  $("#k-inter").textContent = gauge("total_interactions");
  $("#k-jobfail").textContent = sum(cur, "job_runs_total", (l) => l.status === "FAILURE");
  if (lastScrape) {
    const dt = (now - lastScrape.at) / 1000;
    const delta = (name, pred) => sum(cur, name, pred) - sum(lastScrape.samples, name, pred);
    // The console's own scrapes of /metrics are not traffic.
    const served = (l) => l.route !== "/metrics";
    const rate = delta("http_requests_total", served) / dt;
    const p95 = quantile(lastScrape.samples, cur, 0.95);
    const recs = (l) => l.cache === "recommendations";
    const hits = delta("cache_hits_total", recs), misses = delta("cache_misses_total", recs);
    const hit = hits + misses > 0 ? hits / (hits + misses) : null;
    const ruleFailures = delta("rule_failures_total");
    for (const [k, v] of Object.entries({ rate, p95, hit, rulefail: ruleFailures })) {
      history[k].push(v);
      if (history[k].length > 60) history[k].shift();
    }
    $("#k-rate").textContent = rate.toFixed(1);
    $("#k-p95").textContent = p95 === null ? "–" : `≤ ${p95 * 1000} ms`;
    $("#k-hit").textContent = hit === null ? "–" : `${(hit * 100).toFixed(0)} %`;
    $("#k-rulefail").textContent = ruleFailures;
    spark("#c-rate", history.rate); spark("#c-p95", history.p95);
    spark("#c-hit", history.hit); spark("#c-rulefail", history.rulefail);
  }
  lastScrape = { at: now, samples: cur };
}

// ---- jobs ----------------------------------------------------------------------

async function trigger(job, button) {
  button.disabled = true;
  try {
    const run = await api("POST", `/jobs/${job}/trigger`);
    button.textContent = `Run #${run.run_id} started`;
    setTimeout(() => { button.textContent = "Run now"; button.disabled = false; }, 1500);
    await loadJobs();
  } catch (e) {
    button.disabled = false;
    alert(`Could not trigger ${job}: ${e.message}`);
  }
}

async function loadJobs() {
  const jobs = await api("GET", "/jobs");
  const select = $("#runs-job");
  if (select.options.length === 1) {
    for (const j of jobs) select.append(el("option", { value: j.name }, j.name));
  }
  $("#jobs-table tbody").replaceChildren(...jobs.map((j) => el("tr", { "data-job": j.name },
    el("td", {}, el("strong", {}, j.name), el("div", { class: "hint" }, j.description)),
    el("td", {}, j.schedule || "off", j.scope === "replica" ? el("div", { class: "hint" }, "every replica") : null),
    el("td", {}, when(j.next_run)),
    el("td", {}, j.last_run ? [badge(j.last_run.status), ` #${j.last_run.id} `, when(j.last_run.created_at)] : "never"),
    el("td", {}, when(j.last_success_at)),
    el("td", {}, el("button", { class: "secondary trigger", onclick: (e) => trigger(j.name, e.target) }, "Run now")),
  )));
  const params = new URLSearchParams({ limit: "30" });
  if (select.value) params.set("job", select.value);
  if ($("#runs-status").value) params.set("status", $("#runs-status").value);
  const runs = await api("GET", `/jobs/runs?${params}`);
  $("#runs-table tbody").replaceChildren(...runs.map((r) => el("tr", { "data-run": r.id, "data-job": r.job, "data-status": r.status },
    el("td", { class: "num" }, r.id),
    el("td", {}, r.job, r.parent_id ? el("div", { class: "hint" }, `for run #${r.parent_id}`) : null),
    el("td", {}, r.trigger, r.requested_by ? el("div", { class: "hint" }, r.requested_by) : null),
    el("td", {}, badge(r.status)),
    el("td", { class: "num" }, `${r.attempts}/${r.max_attempts}`),
    el("td", {}, when(r.started_at)),
    el("td", { class: "num" }, ms(r.duration_ms)),
    el("td", {}, r.error ? el("pre", { class: "error" }, r.error)
      : r.result ? el("pre", {}, JSON.stringify(r.result, null, 1)) : ""),
  )));
}

// ---- rules -----------------------------------------------------------------------

async function changeRule(name, change) {
  try {
    await api("PUT", `/rules/${encodeURIComponent(name)}`, change);
    $("#rules-message").textContent = `${name}: saved.`;
  } catch (e) {
    $("#rules-message").textContent = `${name}: ${e.message}`;
  }
  await loadRules();
}

async function loadRules() {
  const list = await api("GET", "/rules/");
  $("#ruleset-version").textContent = `rule set v${list.rule_set_version}`;
  $("#rules-table tbody").replaceChildren(...list.rules.map((r) => {
    const priority = el("input", { class: "priority", type: "number", value: r.priority, "aria-label": `priority of ${r.name}` });
    const failures = Object.values(r.stats.failures || {}).reduce((a, b) => a + b, 0);
    return el("tr", { "data-rule": r.name },
      el("td", {}, el("strong", {}, r.name), el("div", { class: "hint" }, r.description)),
      el("td", {}, r.kind),
      el("td", {}, priority, " ",
        el("button", { class: "secondary", onclick: () => changeRule(r.name, { priority: Number(priority.value) }) }, "Set")),
      el("td", {}, el("input", {
        type: "checkbox", class: "enabled", checked: r.enabled, "aria-label": `${r.name} enabled`,
        onchange: (e) => changeRule(r.name, { enabled: e.target.checked }),
      })),
      el("td", {}, r.source),
      el("td", { class: "num" }, r.stats.calls),
      el("td", { class: "num" }, r.stats.mean_duration_ms.toFixed(3)),
      el("td", { class: "num" + (failures ? " error" : "") }, failures),
    );
  }));
}

// ---- bundles -----------------------------------------------------------------------

async function rollback(name, revision) {
  if (!confirm(`Roll ${name} back to revision ${revision}?`)) return;
  try {
    await api("POST", `/rules/bundles/${encodeURIComponent(name)}/rollback`, { revision });
    $("#bundles-message").textContent = `${name}: revision ${revision} is active.`;
  } catch (e) {
    $("#bundles-message").textContent = `${name}: ${e.message}`;
  }
  await loadBundles();
}

async function shadowAction(method, path, label) {
  try {
    await api(method, path);
    $("#bundles-message").textContent = label;
  } catch (e) {
    $("#bundles-message").textContent = e.message;
  }
  await loadBundles();
}

async function loadBundles() {
  const bundles = await api("GET", "/rules/bundles");
  const blocks = [];
  for (const b of bundles) {
    const [status, events] = await Promise.all([
      api("GET", `/rules/bundles/${encodeURIComponent(b.name)}`),
      api("GET", `/rules/bundles/${encodeURIComponent(b.name)}/history?limit=10`),
    ]);
    blocks.push(el("div", { class: "bundle", "data-bundle": b.name },
      el("h3", {}, b.name, " ", el("small", { class: "hint" }, `active: ${b.active_revision || "none"}, this replica: ${b.running_revision || "none"}`)),
      status.replica.last_error ? el("p", { class: "error" }, `Last error: ${status.replica.last_error}`) : null,
      el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "Revision"), el("th", {}, "Uploaded"), el("th", {}, "By"), el("th", {}, "Signed by"), el("th", {}, ""))),
        el("tbody", {}, status.revisions.map((r) => el("tr", { "data-revision": r.revision },
          el("td", {}, r.revision), el("td", {}, when(r.uploaded_at)), el("td", {}, r.uploaded_by), el("td", {}, r.signed_by || "–"),
          el("td", {}, r.revision === b.active_revision ? "active"
            : el("button", { class: "secondary", onclick: () => rollback(b.name, r.revision) }, "Roll back to this")),
        )))),
      el("h4", {}, "History"),
      el("table", {},
        el("tbody", {}, events.map((e) => el("tr", {},
          el("td", {}, when(e.at)), el("td", {}, e.action), el("td", {}, e.revision), el("td", {}, e.actor),
          el("td", { class: e.error ? "error" : "" }, e.error || ""),
        )))),
    ));
  }
  $("#bundles-list").replaceChildren(...(blocks.length ? blocks : [el("p", { class: "hint" }, "No bundles uploaded: the built-in rules are running.")]));

  let shadow = null;
  try { shadow = await api("GET", "/rules/bundles/shadow"); } catch (e) { if (e.status !== 404) throw e; }
  $("#shadow").replaceChildren(shadow
    ? el("div", { class: "bundle" },
      el("h3", {}, `${shadow.name} ${shadow.revision}`, " ", el("small", { class: "hint" }, `since ${when(shadow.started_at)}`)),
      el("p", {}, `Compared ${shadow.compared} (skipped ${shadow.skipped}), identical ${shadow.identical}, ` +
        `overlap ${(shadow.mean_overlap * 100).toFixed(0)} %, rank correlation ${shadow.mean_rank_correlation.toFixed(2)}, ` +
        `added ${shadow.items_added}, dropped ${shadow.items_dropped}, errors ${shadow.errors}, ` +
        `latency ${shadow.mean_latency_ms.toFixed(2)} ms (max ${shadow.max_latency_ms.toFixed(2)})`),
      el("button", { onclick: () => shadowAction("POST", "/rules/bundles/shadow/promote", "Shadow bundle promoted.") }, "Promote"), " ",
      el("button", { class: "secondary", onclick: () => shadowAction("DELETE", "/rules/bundles/shadow", "Shadow evaluation stopped.") }, "Stop"))
    : el("p", { class: "hint" }, "No shadow evaluation running (start one with POST /api/v1/rules/bundles/shadow)."));
}

// ---- start -----------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", signIn);
  $("#logout").addEventListener("click", () => signOut());
  document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));
  $("#runs-job").addEventListener("change", () => loadJobs());
  $("#runs-status").addEventListener("change", () => loadJobs());
  if (session.access) enter();
});
