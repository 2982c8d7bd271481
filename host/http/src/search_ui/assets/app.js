// The search page: searches as the visitor types, with highlights, facet filters, sorting and
// pages. It talks only to its own routes under the page's path; the key stays on the server.
"use strict";

const BASE = document.documentElement.dataset.base;
const PER_PAGE = 10;
const FACET_VALUES = 10;
const PRE = "\u0002";
const POST = "\u0003";

const $ = (id) => document.getElementById(id);
const state = { index: null, indexes: [], page: 1, selected: new Map(), sequence: 0, timer: 0 };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// A highlighted value: escaped, with the highlight markers turned into <mark>.
function highlighted(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  const short = text.length > 300 ? text.slice(0, 300) + "…" : text;
  return escapeHtml(short).split(PRE).join("<mark>").split(POST).join("</mark>");
}

function quoted(value) {
  return '"' + String(value).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
}

// Values of one attribute are alternatives (OR); attributes all apply (AND).
function filter() {
  const clauses = [];
  for (const [attribute, values] of state.selected) {
    if (values.size) clauses.push([...values].map((v) => `${attribute} = ${quoted(v)}`));
  }
  return clauses;
}

function status(message, isError) {
  $("status").textContent = message || "";
  $("status").classList.toggle("error", Boolean(isError));
}

async function post(path, body) {
  const response = await fetch(BASE + path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  return { response, answer };
}

async function search() {
  const index = state.index;
  if (!index) return;
  const sequence = ++state.sequence;
  const body = {
    q: $("q").value,
    page: state.page,
    hitsPerPage: PER_PAGE,
    facets: index.filterableAttributes,
    attributesToHighlight: ["*"],
    highlightPreTag: PRE,
    highlightPostTag: POST,
  };
  const clauses = filter();
  if (clauses.length) body.filter = clauses;
  if ($("sort").value) body.sort = [$("sort").value];
  let result;
  try {
    result = await post(`/api/indexes/${encodeURIComponent(index.uid)}/search`, body);
  } catch (error) {
    if (sequence === state.sequence) status("The search service cannot be reached.", true);
    return;
  }
  if (sequence !== state.sequence) return; // a newer search is under way
  const { response, answer } = result;
  if (response.status === 429) {
    const wait = response.headers.get("Retry-After") || "a few";
    status(`Too many requests: please wait ${wait} seconds before searching again.`, true);
    return;
  }
  if (!response.ok) {
    status(answer.message || `The search failed (${response.status}).`, true);
    return;
  }
  status("");
  render(answer);
}

function render(answer) {
  const index = state.index;
  const total = answer.totalHits ?? answer.estimatedTotalHits ?? 0;
  $("total").textContent = `${total} result${total === 1 ? "" : "s"} · ${answer.processingTimeMs ?? 0} ms`;
  const list = $("results");
  list.replaceChildren();
  for (const hit of answer.hits) list.append(hitItem(hit, index.primaryKey));
  renderFacets(answer.facetDistribution || {});
  renderPager(answer.totalPages || 0);
}

function hitItem(hit, primaryKey) {
  const shown = hit._formatted || hit;
  const fields = Object.keys(hit).filter((k) => !k.startsWith("_") && k !== primaryKey);
  const titleField = ["title", "name", "label"].find((k) => k in hit) || fields.find((k) => typeof hit[k] === "string");
  const item = document.createElement("li");
  item.className = "hit";
  const title = document.createElement("h2");
  title.innerHTML = titleField ? highlighted(shown[titleField]) : escapeHtml(hit[primaryKey] ?? "");
  item.append(title);
  const details = document.createElement("dl");
  for (const field of fields.filter((k) => k !== titleField).slice(0, 4)) {
    const term = document.createElement("dt");
    term.textContent = field;
    const value = document.createElement("dd");
    value.innerHTML = highlighted(shown[field] ?? hit[field]);
    details.append(term, value);
  }
  item.append(details);
  return item;
}

function renderFacets(distribution) {
  const aside = $("facets");
  aside.replaceChildren();
  for (const attribute of state.index.filterableAttributes) {
    const values = distribution[attribute] || {};
    const selected = state.selected.get(attribute) || new Set();
    const names = Object.keys(values).slice(0, FACET_VALUES);
    for (const value of selected) if (!names.includes(value)) names.push(value);
    if (!names.length) continue;
    const group = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = attribute;
    group.append(legend);
    for (const value of names) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = selected.has(value);
      box.dataset.attribute = attribute;
      box.dataset.value = value;
      box.addEventListener("change", () => toggle(attribute, value, box.checked));
      const name = document.createElement("span");
      name.textContent = value;
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = values[value] ?? 0;
      label.append(box, name, count);
      group.append(label);
    }
    aside.append(group);
  }
}

function toggle(attribute, value, on) {
  const values = state.selected.get(attribute) || new Set();
  if (on) values.add(value); else values.delete(value);
  state.selected.set(attribute, values);
  state.page = 1;
  search();
}

function renderPager(pages) {
  const nav = $("pager");
  nav.replaceChildren();
  if (pages <= 1) return;
  const button = (label, page, id) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (id) b.id = id;
    b.disabled = page < 1 || page > pages;
    if (page === state.page && !id) b.setAttribute("aria-current", "page");
    b.addEventListener("click", () => { state.page = page; search(); });
    return b;
  };
  nav.append(button("‹ Previous", state.page - 1, "previous"));
  const first = Math.max(1, Math.min(state.page - 3, pages - 6));
  for (let page = first; page <= Math.min(pages, first + 6); page++) nav.append(button(String(page), page));
  nav.append(button("Next ›", state.page + 1, "next"));
}

function chooseIndex(uid) {
  state.index = state.indexes.find((i) => i.uid === uid) || null;
  state.selected = new Map();
  state.page = 1;
  const sort = $("sort");
  sort.replaceChildren(new Option("Relevance", ""));
  for (const attribute of state.index ? state.index.sortableAttributes : []) {
    sort.append(new Option(`${attribute} ↑`, `${attribute}:asc`), new Option(`${attribute} ↓`, `${attribute}:desc`));
  }
  sort.hidden = sort.options.length === 1;
  search();
}

async function start() {
  let response;
  try {
    response = await fetch(`${BASE}/api/indexes`);
  } catch (error) {
    status("The search service cannot be reached.", true);
    return;
  }
  if (response.status === 429) {
    status(`Too many requests: please wait ${response.headers.get("Retry-After") || "a few"} seconds and reload.`, true);
    return;
  }
  const answer = await response.json().catch(() => ({ results: [] }));
  state.indexes = answer.results || [];
  const select = $("index");
  for (const index of state.indexes) select.append(new Option(index.uid, index.uid));
  select.hidden = state.indexes.length < 2;
  if (!state.indexes.length) {
    status("There is nothing to search yet.", false);
    return;
  }
  select.addEventListener("change", () => chooseIndex(select.value));
  $("sort").addEventListener("change", () => { state.page = 1; search(); });
  $("q").addEventListener("input", () => {
    clearTimeout(state.timer);
    state.timer = setTimeout(() => { state.page = 1; search(); }, 120);
  });
  chooseIndex(state.indexes[0].uid);
}

start();
