/* galtaxa inspect: the page's logic.  Every value from the run (ids, classes, comments, names) reaches the
   page through textContent or attributes set with setAttribute, never as HTML. */
"use strict";

const S = {
  run: null, classes: [], descriptions: {}, flags: [], groups: [], votes: {}, comments: {},
  inspector: "", gi: 0, view: "original", members: [], queue: [], qi: 0,
  dialog: null, psource: "native", shown: null, labelsMine: 0, sortKeys: [],
  sort: { key: "", dir: "asc" }, filter: { show: "all", key: "", op: "ge", value: "" },
};
const FLAG_KEYS = { m: "misplaced", a: "artefact", g: "merger", i: "interesting" };
const PALETTE = ["#e8804a", "#d8b64a", "#4aa8de", "#78c46a", "#9aa0a6", "#c47ad8", "#4ad8c4", "#d84a7a", "#8a8ad8"];
const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = String(v);
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function classColor(cls) {
  const i = S.classes.indexOf(cls);
  return i < 0 ? "#666" : PALETTE[i % PALETTE.length];
}

function badge(cls, extra = "") {
  const b = el("span", { class: `badge ${extra}`, text: cls });
  b.style.setProperty("--c", classColor(cls));
  return b;
}

function fmt(x, digits = 2) {
  return x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(digits);
}

/* "1 galaxy", "3 galaxies" */
function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

let bannerTimer = null;
function banner(msg, kind = "error") {
  const b = $("banner");
  b.textContent = msg;
  b.className = `banner ${kind}`;
  b.hidden = false;
  clearTimeout(bannerTimer);
  if (kind !== "error") bannerTimer = setTimeout(() => { b.hidden = true; }, 4000);
}

let toastTimer = null;
function toast(msg) {
  const t = $("toast");
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 1600);
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (err) {
    banner(`The app does not answer (${err.message}): is galtaxa inspect still running?`);
    throw err;
  }
  let data = null;
  try { data = await resp.json(); } catch (_) { data = null; }
  if (!resp.ok) {
    const msg = (data && data.error) || `${resp.status} ${resp.statusText}`;
    banner(`Not saved: ${msg}`);
    throw new Error(msg);
  }
  return data;
}

function needName() {
  if (S.inspector) return false;
  banner("Type your name in the Inspector box first: every choice is saved under it.");
  $("inspector").focus();
  return true;
}

function imgUrl(row, { view = "original", stretch = "stored", size = 96 } = {}) {
  return `/img/${Number(row)}.png?view=${encodeURIComponent(view)}&stretch=${encodeURIComponent(stretch)}&size=${size}`;
}

/* ------------------------------------------------------------------ flag icons
   One shape and colour per kind of flag, so that a merger, an artefact and a low S/N never look alike; each
   icon carries its meaning as a tooltip (<title>) and the legend above the grid lists them. */
const SVGNS = "http://www.w3.org/2000/svg";
const ICONS = {
  merger: { color: "#d59cf0", label: "merger (an inspector's flag)",
    shapes: [["circle", { cx: 5.8, cy: 8, r: 4.3 }], ["circle", { cx: 10.2, cy: 8, r: 4.3 }]] },
  artefact: { color: "#ff6b6b", label: "artefact (an inspector's flag)",
    shapes: [["rect", { x: 1.8, y: 1.8, width: 12.4, height: 12.4, rx: 2 }], ["path", { d: "M5 5L11 11M11 5L5 11" }]] },
  misplaced: { color: "#ffa45c", label: "misplaced in this group (an inspector's flag)",
    shapes: [["path", { d: "M1.5 5H12.5M9.5 2L12.5 5L9.5 8M14.5 11H3.5M6.5 8L3.5 11L6.5 14" }]] },
  interesting: { color: "#ffd84d", label: "interesting (an inspector's flag)", fill: true,
    shapes: [["path", { d: "M8 1.3L9.9 5.9L14.7 6.2L11 9.3L12.2 14L8 11.4L3.8 14L5 9.3L1.3 6.2L6.1 5.9Z" }]] },
  low_sn: { color: "#8ec5ff", label: "low S/N per pixel (< 2.5): C, A, S, Gini, M20 unreliable",
    shapes: [["rect", { x: 1.5, y: 10, width: 3, height: 4.5, fill: "#8ec5ff" }], ["rect", { x: 6.5, y: 6, width: 3, height: 8.5 }],
      ["rect", { x: 11.5, y: 2, width: 3, height: 12.5 }]] },
  measure: { color: "#ff9f43", label: "measurement flagged (statmorph flag 2 or more, failed fit, or not measured)",
    shapes: [["path", { d: "M8 1.5L15 14.5H1Z" }], ["path", { d: "M8 6V10M8 11.8V12.6" }]] },
  display_8bit: { color: "#b0b7c3", label: "measured on a display-stretched 8-bit picture (biased profile values)",
    shapes: [["rect", { x: 1.5, y: 3, width: 13, height: 10, rx: 1.5 }], ["path", { d: "M4 10L7 7L9 9L12 6" }]] },
};
ICONS.ok = { color: "#6fd08c", label: "measured without a flag", shapes: [["path", { d: "M2.5 8.5L6.5 12.5L13.5 3.5" }]] };
ICONS.anomaly = { color: "#4ad8c4", label: "anomaly: in the mixture's low-likelihood tail (multimodal route)",
  shapes: [["path", { d: "M8 1.5L14.5 8L8 14.5L1.5 8Z" }], ["path", { d: "M8 5V8.8M8 10.8V11.3" }]] };
ICONS.flag = ICONS.measure;
ICONS.flag_sersic = ICONS.measure;

function flagIcon(kind, label) {
  const spec = ICONS[kind];
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("class", `icon icon-${kind}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label || (spec ? spec.label : kind));
  svg.dataset.kind = kind;
  const title = document.createElementNS(SVGNS, "title");
  title.textContent = label || (spec ? spec.label : kind);
  svg.append(title);
  for (const [tag, attrs] of spec ? spec.shapes : [["circle", { cx: 8, cy: 8, r: 5 }]]) {
    const node = document.createElementNS(SVGNS, tag);
    node.setAttribute("fill", spec && spec.fill ? spec.color : "none");
    node.setAttribute("stroke", spec ? spec.color : "#9299a6");
    node.setAttribute("stroke-width", "1.6");
    node.setAttribute("stroke-linecap", "round");
    node.setAttribute("stroke-linejoin", "round");
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    svg.append(node);
  }
  return svg;
}

/* ------------------------------------------------------------------ tiles: loading state, lazy loading
   A tile shows "loading" (a pulsing placeholder with a spinner) from the moment it is drawn until its picture has
   arrived, "no picture" when the server refuses it; its picture is only asked for when the tile comes near the
   viewport (IntersectionObserver, 400 px ahead), so a grid of 100 polar unfoldings starts with the visible ones. */
const TILE_AHEAD = "400px";
const tileObserver = typeof IntersectionObserver === "function"
  ? new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      tileObserver.unobserve(e.target);
      startTile(e.target);
    }
  }, { rootMargin: TILE_AHEAD })
  : null;

function startTile(cell) {
  const img = cell.querySelector("img[data-src]");
  if (!img || img.getAttribute("src")) return;
  cell.dataset.state = "loading";
  img.src = img.dataset.src;
}

function tileDone(cell, ok, why = "") {
  cell.classList.remove("loading");
  cell.dataset.state = ok ? "loaded" : "failed";
  const state = cell.querySelector(".tile-state");
  if (ok) { if (state) state.remove(); return; }
  if (state) { state.textContent = why || "no picture"; state.classList.add("failed"); }
}

function tileImage(cell, url, alt) {
  cell.classList.add("tile", "loading");
  cell.dataset.state = "waiting";
  const img = el("img", { alt, "data-src": url, loading: "lazy", decoding: "async" });
  img.addEventListener("load", () => tileDone(cell, true));
  img.addEventListener("error", () => tileDone(cell, false));
  cell.append(el("span", { class: "tile-state", role: "status" }, el("span", { class: "spinner", "aria-hidden": "true" }),
    "loading"));
  cell.append(img);
  if (tileObserver) tileObserver.observe(cell);
  else startTile(cell);
  return cell;
}

/* ------------------------------------------------------------------ votes and progress */
async function loadVotes() {
  const v = await api("/api/votes");
  S.votes = v.groups;
  renderGroupList();
  renderVotes();
  renderProgress();
  if (!applyTimer) await loadApply();
}

function myVote(g) {
  const v = S.votes[String(g)];
  return v && v.votes ? v.votes[S.inspector] || null : null;
}

function renderProgress() {
  const named = S.groups.filter((g) => !g.rejected && myVote(g.group)).length;
  const total = S.groups.filter((g) => !g.rejected).length;
  $("progress").textContent = S.inspector
    ? `${S.inspector}: ${named} of ${plural(total, "group", "groups")} named · ${plural(S.labelsMine, "galaxy", "galaxies")} labelled`
    : "no inspector name yet";
}

/* ------------------------------------------------------------------ applying the names to the catalog */
let applyTimer = null;

async function loadApply() {
  const a = await api("/api/apply");
  S.apply = a;
  renderApply();
  if (a.job.state === "running" && !applyTimer) applyTimer = setTimeout(pollApply, 1500);
  return a;
}

async function pollApply() {
  applyTimer = null;
  const before = S.apply ? S.apply.job.state : "";
  const a = await loadApply();
  if (before === "running" && a.job.state !== "running") {
    if (a.job.state === "done") {
      toast("The catalog has the groups' classes now");
      await selectGroup(S.gi);  // the members' classes come from the new catalog
    } else {
      banner(`Applying the mapping failed: ${a.job.error || "see the log under the button"}`);
    }
  }
}

function renderApply() {
  const a = S.apply;
  if (!a) return;
  const total = Object.keys(a.resolved).length;
  const st = $("apply-status");
  st.replaceChildren();
  st.append(el("b", { text: `${a.n_named} of ${plural(total, "group", "groups")}` }),
    ` ${a.n_named === 1 ? "has" : "have"} a class by the inspectors' votes. `);
  if (!a.differs.length) st.append("The catalog has these classes.");
  else {
    st.append(el("b", { text: plural(a.differs.length, "group", "groups") }),
      ` ${a.differs.length === 1 ? "has" : "have"} another class in the catalog (${a.differs.join(", ")}).`);
  }
  $("apply-config").textContent = a.config_mapping && a.config_mapping !== a.mapping_file
    ? ` (it names ${a.config_mapping} now)` : "";
  const running = a.job.state === "running";
  const btn = $("apply-btn");
  btn.disabled = running || !a.config || !a.n_named || !!a.error;
  btn.title = !a.config ? "this run folder has no config.yaml" : (!a.n_named ? "name groups first" : (a.error || ""));
  btn.textContent = running ? "Applying…" : "Apply the mapping to the catalog";
  const job = $("apply-job");
  job.className = `apply-job ${a.job.state}`;
  job.dataset.state = a.job.state;
  const at = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");
  job.textContent = {
    idle: "",
    running: `Running galtaxa run (started by ${a.job.by} at ${at(a.job.started)}): cached stages reused…`,
    done: `Applied at ${at(a.job.finished)} by ${a.job.by}.`,
    failed: `Failed at ${at(a.job.finished)}: ${a.job.error || "see the log"}`,
  }[a.job.state] || "";
  if (a.job.started) job.title = `started ${a.job.started}` + (a.job.finished ? `, finished ${a.job.finished}` : "");
  const logBox = $("apply-log");
  logBox.hidden = !a.job.log.length || a.job.state === "idle";
  logBox.textContent = a.job.log.join("\n");
  logBox.scrollTop = logBox.scrollHeight;  // the newest lines (the summary at the end)
}

async function applyMapping() {
  if (needName()) return;
  S.apply = await api("/api/apply", { inspector: S.inspector });
  renderApply();
  if (!applyTimer) applyTimer = setTimeout(pollApply, 1500);
}

/* ------------------------------------------------------------------ group list */
function renderGroupList() {
  const list = $("group-list");
  list.replaceChildren();
  S.groups.forEach((g, i) => {
    const v = S.votes[String(g.group)] || {};
    const mine = myVote(g.group);
    const item = el("button", {
      type: "button", class: `gitem${i === S.gi ? " active" : ""}${g.rejected ? " rejected" : ""}`,
      "data-group": g.group, onclick: () => selectGroup(i),
    },
    el("span", { class: "gname", text: g.rejected ? "Rejected (-1)" : `Group ${g.group}` }),
    el("span", { class: "gsize", text: `${g.n} · ${(100 * g.share).toFixed(1)}%` }));
    const marks = el("span", { class: "gmarks" });
    if (mine) marks.append(badge(mine, "mine"));
    if (v.disagree) marks.append(el("span", { class: "warn", title: "inspectors disagree", text: "≠" }));
    else if (v.classified && v.resolved && v.resolved !== mine) marks.append(badge(v.resolved, "resolved"));
    item.append(marks);
    list.append(item);
  });
}

/* ------------------------------------------------------------------ one group */
async function selectGroup(i) {
  if (!S.groups.length) return;
  S.gi = (i + S.groups.length) % S.groups.length;
  const g = S.groups[S.gi];
  history.replaceState(null, "", `#g${g.group}`);
  renderGroupList();
  $("group-title").textContent = g.rejected ? "Rejected by the vote (group -1)" : `Group ${g.group}`;
  $("group-facts").textContent = `${plural(g.n, "galaxy", "galaxies")} · ${(100 * g.share).toFixed(1)}% of the run`
    + (g.rejected ? " · not named as a group: label them one by one (Label queue)" : "");
  renderMedians(g);
  renderClassBar();
  renderVotes();
  if (!g.views.includes(S.view)) S.view = "original";
  renderViewSwitch(g);
  const data = await api(`/api/groups/${g.group}`);
  if (S.groups[S.gi].group !== g.group) return;  // the inspector moved on meanwhile
  S.members = data.members;
  S.sortKeys = data.sort_keys || [];
  renderSorter();
  renderGrid();
  renderComment();
}

function renderMedians(g) {
  const t = $("medians");
  t.replaceChildren();
  const keys = Object.keys(g.medians || {});
  if (!keys.length) { t.hidden = true; return; }
  t.hidden = false;
  t.append(el("tr", {}, el("th", { text: "" }), ...keys.map((k) => el("th", { text: k }))));
  t.append(el("tr", {}, el("th", { text: "median", class: "rowhead" }), ...keys.map((k) => el("td", { text: fmt(g.medians[k]) }))));
}

function classButtons(container, active, onPick, disabled = false) {
  container.replaceChildren();
  S.classes.forEach((c, i) => {
    const b = el("button", {
      type: "button", class: `cls${c === active ? " on" : ""}`, "data-cls": c, disabled,
      title: S.descriptions[c] || c, "aria-pressed": c === active ? "true" : "false",
      onclick: () => onPick(c),
    }, el("kbd", { text: i + 1 < 10 ? String(i + 1) : "" }), " ", c);
    b.style.setProperty("--c", classColor(c));
    container.append(b);
  });
  container.append(el("button", {
    type: "button", class: "cls clear", disabled: disabled || !active, title: "clear (0)", onclick: () => onPick(null),
  }, el("kbd", { text: "0" }), " clear"));
}

function renderClassBar() {
  const g = S.groups[S.gi];
  if (!g) return;
  classButtons($("class-bar"), myVote(g.group), (c) => vote(g.group, c), g.rejected);
}

async function vote(group, cls) {
  if (needName()) return;
  await api("/api/vote", { inspector: S.inspector, group, class: cls });
  toast(cls ? `Group ${group}: ${cls} saved` : `Group ${group}: cleared`);
  await loadVotes();
  renderClassBar();
}

function renderVotes() {
  const box = $("votes");
  const g = S.groups[S.gi];
  box.replaceChildren();
  if (!g || g.rejected) { box.className = "votes"; return; }
  const v = S.votes[String(g.group)] || { votes: {} };
  const names = Object.keys(v.votes || {});
  box.className = `votes${v.disagree ? " disagree" : ""}`;
  if (!names.length) {
    box.append(el("span", { class: "muted", text: "No inspector has named this group yet." }));
    return;
  }
  const chips = el("div", { class: "chips" });
  for (const n of names) {
    chips.append(el("span", { class: `chip${n === S.inspector ? " me" : ""}`, "data-inspector": n },
      el("span", { class: "who", text: n }), badge(v.votes[n])));
  }
  box.append(chips);
  let verdict;
  if (v.disagree) {
    verdict = v.classified
      ? `Inspectors disagree (${v.summary}): the majority gives ${v.resolved}.`
      : `Inspectors disagree (${v.summary}): a tie, the group stays unclassified.`;
  } else {
    verdict = `Resolved: ${v.resolved} (${v.summary}).`;
  }
  box.append(el("div", { class: "verdict", text: verdict }));
}

function renderViewSwitch(g) {
  const sw = $("view-switch");
  sw.replaceChildren();
  const labels = { original: "original", polar: "polar (pre-processed)" };
  for (const v of ["original", "polar"]) {
    sw.append(el("button", {
      type: "button", class: v === S.view ? "on" : "", disabled: !g.views.includes(v),
      title: g.views.includes(v) ? "" : "not available for this run", onclick: () => { S.view = v; renderViewSwitch(g); renderGrid(); },
    }, labels[v]));
  }
}

function cellMarks(m) {
  const box = el("span", { class: "marks" });
  const mine = (m.labels || []).find((l) => l.inspector === S.inspector);
  const others = (m.labels || []).filter((l) => l.inspector !== S.inspector);
  if (mine && mine.class) box.append(badge(mine.class, "tiny"));
  for (const f of mine && mine.flags ? mine.flags.split(";") : []) {
    box.append(el("span", { class: "flagmark", "data-flag": f }, flagIcon(f, `${f} (your flag)`)));
  }
  const theirs = [...new Set(others.flatMap((l) => (l.flags ? l.flags.split(";") : [])))];
  for (const f of theirs) {
    if (!(mine && mine.flags && mine.flags.split(";").includes(f))) {
      box.append(el("span", { class: "flagmark other", "data-flag": f }, flagIcon(f, `${f} (another inspector's flag)`)));
    }
  }
  if (!mine && others.length && !theirs.length) {
    box.append(el("span", { class: "othermark", title: "labelled by another inspector", text: "•" }));
  }
  return box;
}

/* the catalog's own flags of a galaxy (measurement, low S/N, anomaly), top left */
function catalogMarks(m) {
  const box = el("span", { class: "cmarks" });
  for (const k of m.flag_kinds || []) box.append(el("span", { class: "cflag", "data-kind": k }, flagIcon(k)));
  return box;
}

/* ------------------------------------------------------------------ sorting and filtering a group's grid */
const SHOW_LABELS = {
  all: "all galaxies", inspector: "flagged by an inspector", measure: "measurement flagged", low_sn: "low S/N",
  anomaly: "anomalies", clean: "without any flag",
};

function keyLabel(key) {
  const k = S.sortKeys.find((x) => x.key === key);
  return k ? k.label : key;
}

function keyOptions(select, current, first) {
  select.replaceChildren(el("option", { value: "", text: first }));
  const kinds = { classifier: "classifier", clustering: "clustering", measured: "measured", other: "other columns" };
  for (const [kind, label] of Object.entries(kinds)) {
    const keys = S.sortKeys.filter((k) => k.kind === kind);
    if (!keys.length) continue;
    const grp = el("optgroup", { label });
    for (const k of keys) grp.append(el("option", { value: k.key, text: k.label, selected: k.key === current }));
    select.append(grp);
  }
  select.value = S.sortKeys.some((k) => k.key === current) ? current : "";
}

function renderSorter() {
  if (!S.sortKeys.some((k) => k.key === S.sort.key)) S.sort.key = "";
  if (!S.sortKeys.some((k) => k.key === S.filter.key)) S.filter.key = "";
  keyOptions($("sort-key"), S.sort.key, "mosaic order");
  keyOptions($("filter-key"), S.filter.key, "(any value)");
  $("sort-dir").textContent = S.sort.dir === "asc" ? "ascending ↑" : "descending ↓";
  $("sort-dir").disabled = !S.sort.key;
  const show = $("filter-show");
  show.replaceChildren();
  const kinds = ["all", "inspector", ...S.flags.map((f) => `flag:${f}`), ...(S.run.catalog_flags || []), "clean"];
  for (const k of kinds) {
    const label = k.startsWith("flag:") ? `flagged ${k.slice(5)}` : SHOW_LABELS[k];
    show.append(el("option", { value: k, text: label, selected: k === S.filter.show }));
  }
  show.value = kinds.includes(S.filter.show) ? S.filter.show : "all";
  $("filter-op").value = S.filter.op;
  $("filter-value").value = S.filter.value;
  $("filter-value").disabled = !S.filter.key;
  $("filter-op").disabled = !S.filter.key;
}

function inspectorFlags(m) {
  return (m.labels || []).flatMap((l) => (l.flags ? l.flags.split(";") : []));
}

function shown(m) {
  const f = S.filter;
  const mine = inspectorFlags(m);
  const kinds = m.flag_kinds || [];
  if (f.show === "inspector" && !mine.length) return false;
  if (f.show.startsWith("flag:") && !mine.includes(f.show.slice(5))) return false;
  if (["measure", "low_sn", "anomaly"].includes(f.show) && !kinds.includes(f.show)) return false;
  if (f.show === "clean" && (mine.length || kinds.length)) return false;
  if (f.key && f.value !== "" && Number.isFinite(Number(f.value))) {
    const v = m.values ? m.values[f.key] : null;
    if (v === null || v === undefined) return false;
    if (f.op === "ge" ? v < Number(f.value) : v > Number(f.value)) return false;
  }
  return true;
}

/* the members shown, in the order shown: filtered, then sorted (missing values last; ties keep the mosaic order) */
function visibleMembers() {
  const list = S.members.filter(shown);
  const key = S.sort.key;
  if (!key) return list;
  const sign = S.sort.dir === "asc" ? 1 : -1;
  return list.sort((a, b) => {
    const va = a.values ? a.values[key] : null;
    const vb = b.values ? b.values[key] : null;
    const na = va === null || va === undefined;
    const nb = vb === null || vb === undefined;
    if (na || nb) return na === nb ? 0 : (na ? 1 : -1);
    return sign * (va - vb);
  });
}

function bindSorter() {
  $("sort-key").addEventListener("change", (e) => {
    S.sort.key = e.target.value;
    const k = S.sortKeys.find((x) => x.key === S.sort.key);
    if (k) S.sort.dir = k.order;
    renderSorter();
    renderGrid();
  });
  $("sort-dir").addEventListener("click", () => {
    S.sort.dir = S.sort.dir === "asc" ? "desc" : "asc";
    renderSorter();
    renderGrid();
  });
  $("filter-show").addEventListener("change", (e) => { S.filter.show = e.target.value; renderGrid(); });
  $("filter-key").addEventListener("change", (e) => { S.filter.key = e.target.value; renderSorter(); renderGrid(); });
  $("filter-op").addEventListener("change", (e) => { S.filter.op = e.target.value; renderGrid(); });
  $("filter-value").addEventListener("input", (e) => { S.filter.value = e.target.value; renderGrid(); });
}

function renderLegend() {
  const box = $("legend");
  box.replaceChildren(el("span", { class: "muted", text: "Icons:" }));
  for (const f of S.flags) box.append(el("span", { class: "item", "data-kind": f }, flagIcon(f), ICONS[f] ? ICONS[f].label : f));
  for (const k of S.run.catalog_flags || []) {
    box.append(el("span", { class: "item", "data-kind": k }, flagIcon(k), ICONS[k] ? ICONS[k].label : k));
  }
}

function sortValueText(v) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e4 || a < 1e-2) ? v.toExponential(1) : String(Number(v.toPrecision(3)));
}

/* the classifier's best guess for one galaxy: the class of its own highest probability (never the count-aware
   decision, which is for population counts) */
function prediction(m) {
  if (!m.sup_best) return null;
  return { cls: m.sup_best, unsure: !!m.sup_unsure, text: `${m.sup_best}${m.sup_unsure ? "?" : ""} ${fmt(m.sup_best_p)}` };
}

function predictionFact(m) {
  const p = prediction(m);
  if (!p) return "";
  return `${p.cls}, probability ${fmt(m.sup_best_p)}`
    + (p.unsure ? " (below the classifier's confidence threshold: unsure)" : "");
}

function cellTitle(m) {
  let t = m.id;
  if (prediction(m)) t += ` · classifier: ${predictionFact(m)}`;
  for (const l of m.labels || []) t += ` · ${l.inspector}: ${[l.class, l.flags].filter(Boolean).join(", ")}`;
  return t;
}

function renderGrid() {
  const grid = $("grid");
  grid.replaceChildren();
  const g = S.groups[S.gi];
  if (!S.members.length) {
    $("grid-count").textContent = "";
    grid.append(el("p", { class: "muted", text: "No galaxy to show for this group." }));
    return;
  }
  const list = visibleMembers();
  const sample = g && g.n > S.members.length ? ` (the mosaic's sample of the group's ${g.n})` : "";
  $("grid-count").textContent = list.length === S.members.length
    ? `${plural(list.length, "galaxy", "galaxies")}${sample}`
    : `showing ${list.length} of ${plural(S.members.length, "galaxy", "galaxies")}${sample}`;
  if (!list.length) {
    grid.append(el("p", { class: "muted", text: "No galaxy of this group matches the filter." }));
    return;
  }
  const valueKey = S.sort.key || S.filter.key;
  for (const m of list) {
    const cell = el("button", {
      type: "button", class: "cell", "data-row": m.row, "data-id": m.id, title: cellTitle(m),
      onclick: () => openGalaxy(m.row),
    });
    if (valueKey && m.values) cell.dataset.value = String(m.values[valueKey] ?? "");
    if (m.has_image) {
      tileImage(cell, imgUrl(m.row, { view: S.view, size: 96 }), m.id);
    } else {
      cell.append(el("span", { class: "noimg", text: m.id }));
    }
    cell.append(cellMarks(m), catalogMarks(m));
    const p = prediction(m);
    if (p) cell.append(el("span", { class: `pred${p.unsure ? " unsure" : ""}`, text: p.text }));
    if (valueKey && m.values && !(valueKey === "confidence" && p)) {  // the best guess shows its probability
      cell.append(el("span", { class: "sortval", title: keyLabel(valueKey), text: sortValueText(m.values[valueKey]) }));
    }
    grid.append(cell);
  }
}

function refreshCell(id) {
  const m = S.members.find((x) => x.id === id);
  if (!m) return;
  for (const cell of $("grid").querySelectorAll(".cell")) {
    if (cell.dataset.id === id) {
      cell.querySelector(".marks").replaceWith(cellMarks(m));
      cell.title = cellTitle(m);
    }
  }
}

function renderComment() {
  const g = S.groups[S.gi];
  const v = S.votes[String(g.group)] || {};
  const comments = v.comments || {};
  const box = $("comment");
  box.disabled = g.rejected;
  if (document.activeElement !== box) box.value = comments[S.inspector] || "";
  box.dataset.saved = box.value;
  const others = $("comments");
  others.replaceChildren();
  for (const [n, text] of Object.entries(comments)) {
    if (n === S.inspector) continue;
    others.append(el("div", { class: "note" }, el("b", { text: `${n}: ` }), el("span", { text })));
  }
}

async function saveComment() {
  const box = $("comment");
  const g = S.groups[S.gi];
  if (!g || g.rejected || box.value === box.dataset.saved) return;
  if (needName()) return;
  await api("/api/comment", { inspector: S.inspector, group: g.group, comment: box.value });
  box.dataset.saved = box.value;
  toast(`Comment on group ${g.group} saved`);
  await loadVotes();
}

/* ------------------------------------------------------------------ one galaxy (dialog) */
async function openGalaxy(row) {
  const d = await api(`/api/galaxy/${Number(row)}`);
  S.dialog = d;
  renderDialog();
  const dlg = $("galaxy");
  if (!dlg.open) dlg.showModal();
  getViewer().clear();
  await showPixels(d, S.psource);
}

function myLabel(labels) {
  return (labels || []).find((l) => l.inspector === S.inspector) || null;
}

function factsList(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === "") continue;
    dl.append(el("dt", { text: k }), el("dd", { text: v }));
  }
}

function galaxyFacts(b, cat) {
  return [
    ["group", b.group === -1 ? "-1 (rejected by the vote)" : String(b.group)],
    ["status", b.status + (cat && cat.reason ? ` (${cat.reason})` : "")],
    ["class (groups)", b.class || (b.group === -1 ? "" : "unclassified")],
    ["agreement", cat && cat.agreement !== undefined && cat.agreement !== null ? String(cat.agreement) : ""],
    ["best guess", predictionFact(b)],
  ];
}

function renderLabels(box, labels) {
  box.replaceChildren();
  for (const l of labels || []) {
    box.append(el("div", { class: `note${l.inspector === S.inspector ? " me" : ""}` },
      el("b", { text: `${l.inspector}: ` }),
      el("span", { text: [l.class, l.flags && l.flags.replaceAll(";", ", ")].filter(Boolean).join(" · ") }),
      el("span", { class: "muted", text: ` ${l.time}` })));
  }
}

function flagButtons(container, active, onToggle) {
  container.replaceChildren();
  const keys = Object.fromEntries(Object.entries(FLAG_KEYS).map(([k, f]) => [f, k]));
  for (const f of S.flags) {
    container.append(el("button", {
      type: "button", class: `flag${active.includes(f) ? " on" : ""}`, "data-flag": f,
      "aria-pressed": active.includes(f) ? "true" : "false", onclick: () => onToggle(f),
    }, el("kbd", { text: keys[f] || "" }), " ", f));
  }
}

/* ------------------------------------------------------------------ the large view (viewer.js) */
const PIXEL_SOURCES = [["native", "native cutout"], ["stamp", "conditioned stamp"], ["polar", "polar unfolding"]];
let viewer = null;

function getViewer() {
  if (!viewer) {
    viewer = new PixelViewer({
      canvas: $("gal-canvas"), scalebar: $("gal-scalebar"), state: $("gal-state"), readout: $("gal-readout"),
      zoomText: $("gal-zoom-level"), range: $("gal-range"),
    });
    for (const b of $("gal-zoom").querySelectorAll("button")) {
      b.addEventListener("click", () => zoomButton(b.dataset.zoom));
    }
  }
  return viewer;
}

function zoomButton(what) {
  const v = getViewer();
  if (!v.data) return;
  if (what === "in") v.zoomAt(1.5, v.width / 2, v.height / 2);
  else if (what === "out") v.zoomAt(1 / 1.5, v.width / 2, v.height / 2);
  else if (what === "fit") v.fit();
  else v.zoomTo(1);
}

/* the pixel sources this galaxy can show, with the reason of the others */
function pixelSources(d) {
  const nat = (d.pixels && d.pixels.native) || {};
  const stamp = !!(d.pixels && d.pixels.stamp);
  return {
    native: { ok: !(nat.ready && !nat.available), why: nat.error || "" },
    stamp: { ok: stamp, why: "this run folder holds no conditioned pixels (no read stage)" },
    polar: { ok: stamp && d.views.includes("polar"), why: "needs the conditioned pixels (read stage)" },
  };
}

function renderPixelTools(d) {
  const avail = pixelSources(d);
  const src = $("gal-source");
  src.replaceChildren(el("span", { class: "muted", text: "pixels" }));
  for (const [key, label] of PIXEL_SOURCES) {
    src.append(el("button", {
      type: "button", class: key === S.shown ? "on" : "", "data-source": key, disabled: !avail[key].ok,
      title: avail[key].ok ? "" : avail[key].why, onclick: () => { S.psource = key; showPixels(d, key); },
    }, label));
  }
  const v = getViewer();
  const cut = $("gal-cut");
  cut.replaceChildren(el("span", { class: "muted", text: "cut" }));
  for (const [key, label] of VIEWER_CUTS) {
    cut.append(el("button", {
      type: "button", class: key === v.cut ? "on" : "", "data-cut": key,
      title: key === "minmax" ? "from the lowest to the highest value" : `the central ${label} of the values`,
      onclick: () => { v.cut = key; v.paint(); renderPixelTools(d); },
    }, label));
  }
  const st = $("gal-stretch");
  st.replaceChildren(el("span", { class: "muted", text: "stretch" }));
  for (const key of VIEWER_STRETCHES) {
    st.append(el("button", {
      type: "button", class: key === v.stretch ? "on" : "", "data-stretch": key,
      onclick: () => { v.stretch = key; v.paint(); renderPixelTools(d); },
    }, key));
  }
  const ch = $("gal-channel");
  const c = v.shape ? v.shape[0] : 1;
  ch.hidden = c < 2;
  ch.replaceChildren(el("span", { class: "muted", text: "channel" }));
  if (c > 1) {
    const opts = (c === 3 ? [["rgb", "RGB"]] : []).concat([...Array(c).keys()].map((k) => [String(k), `${k + 1}`]));
    const active = v.channel === "auto" ? (c === 3 ? "rgb" : "0") : String(v.channel);
    for (const [key, label] of opts) {
      ch.append(el("button", {
        type: "button", class: key === active ? "on" : "", "data-channel": key,
        onclick: () => { v.channel = key; v.paint(); renderPixelTools(d); },
      }, label));
    }
  }
}

function pixelInfo(d, source, what, note = "") {
  const v = getViewer();
  const parts = [what || source];
  if (v.shape) {
    const [c, h, w] = v.shape;
    parts.push(`${w} × ${h} px`, c === 1 ? "1 channel" : `${c} channels`);
  }
  if (source === "native") {
    parts.push(d.pixel_scale ? `${formatValue(d.pixel_scale)}″/px (${d.pixel_scale_from})` : d.pixel_scale_from);
  } else {
    parts.push("no scale bar: the stamp is resampled to the run's conditioning size");
  }
  $("gal-pixinfo").textContent = (note ? `${note} ` : "") + parts.join(" · ");
}

/* draw the galaxy's pixels from `source`; the native cutout falls back to the stamp, the stamp to the picture */
async function showPixels(d, source) {
  const v = getViewer();
  const avail = pixelSources(d);
  const img = $("gal-img");
  img.hidden = true;
  $("gal-canvas").hidden = false;
  let note = "";
  if (!avail[source] || !avail[source].ok) {
    const asked = source;
    source = avail.native.ok ? "native" : (avail.stamp.ok ? "stamp" : null);
    if (asked === "native" && source === "stamp") {
      note = `Native cutout unavailable (${avail.native.why || "the run's input cannot be read"}); showing the conditioned stamp.`;
    }
  }
  while (source) {
    S.shown = source;
    renderPixelTools(d);
    try {
      const what = await v.load(`/api/pixels/${Number(d.row)}?source=${source}`,
        { arcsecPerPx: source === "native" ? d.pixel_scale : null });
      if (what === null || S.dialog !== d) return;  // another galaxy was opened meanwhile
      pixelInfo(d, source, what, note);
      renderPixelTools(d);
      return;
    } catch (err) {
      if (S.dialog !== d) return;
      if (source === "native" && avail.stamp.ok) {
        note = `Native cutout unavailable (${err.message}); showing the conditioned stamp.`;
        source = "stamp";
      } else {
        note = `No pixel values (${err.message}).`;
        source = null;
      }
    }
  }
  S.shown = null;
  v.clear();
  renderPixelTools(d);
  if (d.has_image) {  // the mosaic cell, as a picture
    $("gal-canvas").hidden = true;
    img.hidden = false;
    img.src = imgUrl(d.row, { size: 384 });
    img.alt = d.brief.id;
    $("gal-state").hidden = true;
  }
  $("gal-pixinfo").textContent = `${note} Showing the picture of the group's mosaic.`;
}

function renderDialog() {
  const d = S.dialog;
  const b = d.brief;
  $("gal-title").textContent = b.id;
  factsList($("gal-facts"), galaxyFacts(b, d.catalog).concat(classifierFacts(d.best_guess)));
  const mine = myLabel(d.labels);
  classButtons($("gal-classes"), mine ? mine.class : null, (c) => labelGalaxy(b.id, { class: c }));
  flagButtons($("gal-flags"), mine && mine.flags ? mine.flags.split(";") : [], (f) => toggleFlag(b.id, d.labels, f));
  renderLabels($("gal-labels"), d.labels);
  renderMeasured(d);
  const t = $("gal-row");
  t.replaceChildren();
  for (const f of d.fields || []) {
    t.append(el("tr", { "data-field": f.name }, el("th", { text: f.name }), el("td", { text: f.text, title: f.full })));
  }
  $("gal-all-title").textContent = `All fields (${(d.fields || []).length})`;
}

/* the classifier's probabilities, and the count-aware class beside the best guess, saying what each is for */
function classifierFacts(g) {
  if (!g) return [];
  const out = [];
  const probs = Object.entries(g.probabilities || {});
  if (probs.length) out.push(["probabilities", probs.map(([c, p]) => `${c} ${fmt(p)}`).join(" · ")]);
  if (g.count_class) {
    out.push(["in population counts", g.count_class === g.class
      ? `${g.count_class} too (the count-aware decision, used for class counts)`
      : `counted as ${g.count_class}: the count-aware decision matches the class counts of the whole set to their `
        + `expected numbers, so it is for counting a population, not for this galaxy (its best guess is ${g.class})`]);
  }
  return out;
}

/* the parameters that matter, formatted (the server formats them: galtaxa.inspect.measures), and the flags */
function renderMeasured(d) {
  const box = $("gal-measured");
  const rows = d.measurements || [];
  const flags = d.measure_flags || [];
  box.hidden = !rows.length && !flags.length;
  const t = $("gal-measures");
  t.replaceChildren();
  for (const m of rows) {
    t.append(el("tr", { "data-key": m.key, title: `catalog column ${m.column}` },
      el("th", { text: m.label }), el("td", { class: "num", text: m.text }),
      el("td", { class: `note${/^low/.test(m.note) ? " bad" : ""}`, text: m.note })));
  }
  const ul = $("gal-mflags");
  ul.replaceChildren();
  for (const f of flags) {
    ul.append(el("li", { class: f.level, "data-kind": f.kind }, flagIcon(f.level === "good" ? "ok" : f.kind), f.text));
  }
}

async function labelGalaxy(id, fields) {
  if (needName()) return null;
  const res = await api("/api/label", { inspector: S.inspector, id, ...fields });
  const m = S.members.find((x) => x.id === id);
  if (m) { m.labels = res.labels; refreshCell(id); }
  if (S.dialog && S.dialog.brief.id === id) { S.dialog.labels = res.labels; renderDialog(); }
  const q = S.queue[S.qi];
  if (q && q.id === id) q.labels = res.labels;
  await countMine();
  toast(`${id}: ${[res.label.class, res.label.flags].filter(Boolean).join(", ") || "label cleared"}`);
  return res;
}

function toggleFlag(id, labels, flag) {
  const mine = myLabel(labels);
  const flags = mine && mine.flags ? mine.flags.split(";") : [];
  const next = flags.includes(flag) ? flags.filter((f) => f !== flag) : [...flags, flag];
  return labelGalaxy(id, { flags: next });
}

async function countMine() {
  const all = await api("/api/labels");
  S.labelsMine = all.labels.filter((l) => l.inspector === S.inspector && l.class).length;
  renderProgress();
}

/* ------------------------------------------------------------------ queue */
async function loadQueue() {
  const q = await api(`/api/queue?inspector=${encodeURIComponent(S.inspector)}&limit=40`);
  S.queue = q.items;
  S.qi = 0;
  $("queue-order").textContent = `Order: ${q.order}. ${plural(q.n_rejected, "galaxy was", "galaxies were")} `
    + `rejected by the vote; you labelled ${plural(q.labelled_by_you, "galaxy", "galaxies")}.`;
  renderQueue();
}

function renderQueue() {
  const item = S.queue[S.qi];
  $("queue-empty").hidden = !!item;
  $("queue-card").hidden = !item;
  const strip = $("queue-next");
  strip.replaceChildren();
  if (!item) return;
  $("queue-img").src = imgUrl(item.row, { size: 384 });
  $("queue-img").alt = item.id;
  $("queue-title").textContent = item.id;
  factsList($("queue-facts"), galaxyFacts(item, null));
  const mine = myLabel(item.labels);
  classButtons($("queue-classes"), mine ? mine.class : null, (c) => queueLabel(c));
  flagButtons($("queue-flags"), mine && mine.flags ? mine.flags.split(";") : [],
    async (f) => { await toggleFlag(item.id, item.labels, f); renderQueue(); });
  renderLabels($("queue-labels"), item.labels);
  for (const next of S.queue.slice(S.qi + 1, S.qi + 13)) {
    const tile = el("button", {
      type: "button", class: "cell small", title: cellTitle(next), "data-id": next.id,
      onclick: () => { S.qi = S.queue.indexOf(next); renderQueue(); },
    });
    tileImage(tile, imgUrl(next.row, { size: 64 }), next.id);
    strip.append(tile);
  }
}

async function queueLabel(cls) {
  const item = S.queue[S.qi];
  if (!item) return;
  const res = await labelGalaxy(item.id, { class: cls });
  if (!res) return;
  if (cls) {
    S.queue.splice(S.qi, 1);
    if (S.qi >= S.queue.length - 3) {
      const keep = S.queue.slice(0, S.qi);
      await loadQueue();
      S.queue = keep.concat(S.queue.filter((x) => !keep.some((k) => k.id === x.id)));
      S.qi = Math.min(keep.length, S.queue.length);
    }
  }
  renderQueue();
}

/* ------------------------------------------------------------------ views, keys, start */
function showView(name) {
  for (const v of ["groups", "queue", "help"]) {
    $(`view-${v}`).hidden = v !== name;
    $(`tab-${v}`).classList.toggle("on", v === name);
  }
  S.currentView = name;
  if (name === "queue") loadQueue();
}

function onKey(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const tag = (ev.target && ev.target.tagName) || "";
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
  const k = ev.key;
  const digit = /^[0-9]$/.test(k) ? Number(k) : null;
  const cls = digit ? S.classes[digit - 1] : null;
  const dlg = $("galaxy");
  if (dlg.open) {
    if (!S.dialog) return;
    const id = S.dialog.brief.id;
    if (digit === 0) labelGalaxy(id, { class: null });
    else if (cls) labelGalaxy(id, { class: cls });
    else if (FLAG_KEYS[k]) toggleFlag(id, S.dialog.labels, FLAG_KEYS[k]);
    else if (k === "+" || k === "=") zoomButton("in");
    else if (k === "-") zoomButton("out");
    else if (k === "f") zoomButton("fit");
    else return;
    ev.preventDefault();
    return;
  }
  if (S.currentView === "queue") {
    const item = S.queue[S.qi];
    if (cls) queueLabel(cls);
    else if (k === "s" || k === "ArrowRight") { S.qi = Math.min(S.qi + 1, S.queue.length); renderQueue(); }
    else if (k === "b" || k === "ArrowLeft") { S.qi = Math.max(S.qi - 1, 0); renderQueue(); }
    else if (item && FLAG_KEYS[k]) toggleFlag(item.id, item.labels, FLAG_KEYS[k]).then(renderQueue);
    else return;
    ev.preventDefault();
    return;
  }
  if (S.currentView !== "groups") return;
  const g = S.groups[S.gi];
  if (digit === 0 && g && !g.rejected) vote(g.group, null);
  else if (cls && g && !g.rejected) vote(g.group, cls);
  else if (k === "n" || k === "ArrowDown") selectGroup(S.gi + 1);
  else if (k === "p" || k === "ArrowUp") selectGroup(S.gi - 1);
  else if (k === "v" && g && g.views.includes("polar")) {
    S.view = S.view === "original" ? "polar" : "original"; renderViewSwitch(g); renderGrid();
  } else return;
  ev.preventDefault();
}

function setInspector(name) {
  S.inspector = name.trim();
  try { localStorage.setItem("galtaxa.inspector", S.inspector); } catch (_) { /* private mode */ }
  $("banner").hidden = true;
  renderGroupList();
  renderClassBar();
  renderVotes();
  if (S.groups.length) { renderGrid(); renderComment(); }
  countMine();
  if (S.currentView === "queue") loadQueue();
}

async function start() {
  const r = await api("/api/run");
  S.run = r;
  S.classes = r.classes;
  S.descriptions = r.descriptions;
  S.flags = r.flags;
  S.groups = r.groups;
  if (r.mapping_error) banner(r.mapping_error);
  const params = new URLSearchParams(location.search);
  let stored = "";
  try { stored = localStorage.getItem("galtaxa.inspector") || ""; } catch (_) { stored = ""; }
  S.inspector = (params.get("inspector") || stored || r.inspector || "").trim();
  const box = $("inspector");
  box.value = S.inspector;
  box.addEventListener("change", () => setInspector(box.value));
  box.addEventListener("keydown", (e) => { if (e.key === "Enter") box.blur(); });
  const links = $("links");
  if (r.files["groups.html"]) links.append(el("a", { href: "/files/groups.html", target: "_blank", rel: "noopener", text: "static page" }));
  if (r.files["report/report.html"]) links.append(el("a", { href: "/files/report/report.html", target: "_blank", rel: "noopener", text: "report" }));
  factsList($("class-help"), S.classes.map((c) => [c, S.descriptions[c] || ""]));
  for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => showView(t.dataset.view));
  bindSorter();
  renderLegend();
  $("apply-btn").addEventListener("click", applyMapping);
  $("comment").addEventListener("blur", saveComment);
  $("galaxy").addEventListener("close", () => { S.dialog = null; });
  document.addEventListener("keydown", onKey);
  const m = /^#g(-?\d+)$/.exec(location.hash);
  const at = m ? S.groups.findIndex((g) => g.group === Number(m[1])) : 0;
  await loadVotes();
  await countMine();
  showView(params.get("view") === "queue" ? "queue" : "groups");
  await selectGroup(Math.max(at, 0));
  if (!S.inspector) banner("Type your name in the Inspector box to start: every choice is saved under it.", "info");
  setInterval(() => { if (!document.hidden) loadVotes().then(() => { if (S.groups.length) renderComment(); }).catch(() => {}); }, 5000);
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", () => { start().catch((err) => banner(`The page could not start: ${err.message}`)); });
