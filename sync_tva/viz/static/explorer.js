// sync_tva attention explorer: draws the attention tables inlined in the page as SVG graphs and heatmaps.
// No dependencies and no network: the data is the JSON in #explorer-data (see sync_tva/viz/explorer.py).
(function () {
  "use strict";

  const DATA = JSON.parse(document.getElementById("explorer-data").textContent);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const BAND_ORDER = ["text", "audio", "visual"];
  const FACE_MODALITY = "visual"; // runs made from video give each of its nodes a thumbnail and a box (u.thumbs, u.boxes)
  const THUMB = 26; // side of a thumbnail in the graph, in SVG units (nodes are 6-15)
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const byId = (id) => document.getElementById(id);

  const state = { uid: null, block: "", layer: Math.max(DATA.layers - 1, 0), head: "mean", topk: 3, view: null, hover: null };
  const utterances = DATA.utterances;
  const byUid = new Map(utterances.map((u) => [u.uid, u]));

  // ---- small DOM helpers -------------------------------------------------------------------
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function html(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function option(value, text) {
    return html("option", { value: String(value) }, text);
  }
  function fmt(v) {
    return v.toFixed(4);
  }
  function colour(t) { // t in [0, 1] -> viridis
    const x = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(x), VIRIDIS.length - 2);
    const f = x - i;
    const c = VIRIDIS[i].map((a, k) => Math.round(a + f * (VIRIDIS[i + 1][k] - a)));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  // ---- tables to matrices ------------------------------------------------------------------
  function nodesOf(u) {
    const n = u.nodes;
    return n.node.map((id, i) => ({
      id, modality: n.modality[i], index: n.index[i], label: n.label[i], start: n.start[i], end: n.end[i], pooling: n.pooling[i],
    }));
  }
  // A visual node's thumbnail (PNG data URI) and box ([x0, y0, x1, y1] fractions of the frame), when the run has them.
  function thumbOf(u, node) {
    return node.modality === FACE_MODALITY && u.thumbs ? u.thumbs[node.index] : undefined;
  }
  function boxText(u, node) {
    const box = node.modality === FACE_MODALITY && u.boxes ? u.boxes[node.index] : undefined;
    if (!box) return undefined;
    if (box[0] === 0 && box[1] === 0 && box[2] === 1 && box[3] === 1) return "whole frame";
    const [x0, y0, x1, y1] = box.map((v) => v.toFixed(2));
    return `face ${x0},${y0}-${x1},${y1}`;
  }
  function ofModality(nodes, m) {
    return nodes.filter((n) => n.modality === m).sort((a, b) => a.index - b.index);
  }
  function headsOf(kind) {
    const count = DATA.heads[kind];
    return state.head === "mean" ? [...Array(count).keys()] : [Number(state.head)];
  }
  function addCell(cells, key, row, col, value, share) {
    const cell = cells.get(key) || { row, col, value: 0 };
    cell.value += value * share;
    cells.set(key, cell);
  }
  // A matrix: rows (destination / query nodes), cols (source / key nodes), cells {row, col, value} by
  // position in rows and cols, a colour for its edges and a title.
  function gatMatrix(u, name) {
    const rel = DATA.relations.find((r) => r.name === name);
    const nodes = nodesOf(u);
    const rows = ofModality(nodes, rel.dst_type);
    const cols = ofModality(nodes, rel.src_type);
    const heads = headsOf("gat");
    const g = u.gat;
    const cells = new Map();
    for (let e = 0; e < g.relation.length; e++) {
      if (g.relation[e] !== name) continue;
      for (const h of heads) addCell(cells, `${g.dst[e]}|${g.src[e]}`, g.dst[e], g.src[e], g.attention[state.layer][h][e], 1 / heads.length);
    }
    const head = state.head === "mean" ? "mean of heads" : `head ${state.head}`;
    return { colour: relationColour(name), title: `GAT ${name}: ${rel.src_type} → ${rel.dst_type}, layer ${state.layer}, ${head}`, rows, cols, cells: [...cells.values()] };
  }
  function msdeMatrix(u, m) {
    const nodes = ofModality(nodesOf(u), m);
    const heads = headsOf("msde");
    const weights = u.msde[m] || []; // [head][query * n + key]
    const n = nodes.length;
    const cells = new Map();
    for (const h of heads) {
      (weights[h] || []).forEach((w, i) => addCell(cells, i, Math.floor(i / n), i % n, w, 1 / heads.length));
    }
    const head = state.head === "mean" ? "mean of heads" : `head ${state.head}`;
    return { colour: "#555", title: `MSDE ${m} self-attention, ${head}`, rows: nodes, cols: nodes, cells: [...cells.values()] };
  }
  function cafMatrix(u) {
    const nodes = nodesOf(u);
    const t = u.caf;
    const queries = BAND_ORDER.filter((m) => t.query_modality.includes(m));
    const keys = BAND_ORDER.filter((m) => t.key_modality.includes(m));
    const rows = queries.map((m) => ({ id: `summary:${m}`, modality: m, index: -1, label: `${m} summary`, start: null, end: null, pooling: null }));
    const cols = [];
    const offset = {};
    for (const m of keys) { offset[m] = cols.length; cols.push(...ofModality(nodes, m)); }
    const heads = new Set(headsOf("caf"));
    const cells = new Map();
    for (let i = 0; i < t.attention.length; i++) {
      if (!heads.has(t.head[i])) continue;
      const row = queries.indexOf(t.query_modality[i]);
      const col = offset[t.key_modality[i]] + t.key[i];
      addCell(cells, `${row}|${col}`, row, col, t.attention[i], 1 / heads.size);
    }
    const head = state.head === "mean" ? "mean of heads" : `head ${state.head}`;
    return { colour: "#6a3d9a", title: `CAF: modality summaries attend to nodes, ${head}`, rows, cols, cells: [...cells.values()] };
  }
  function currentMatrix(u) {
    const [kind, name] = state.block.split(":");
    if (kind === "gat") return gatMatrix(u, name);
    if (kind === "msde") return msdeMatrix(u, name);
    return cafMatrix(u);
  }
  function relationColour(name) {
    const i = DATA.relations.findIndex((r) => r.name === name);
    return PALETTE[i % PALETTE.length];
  }
  function isDense(block) {
    const [kind, name] = block.split(":");
    if (kind !== "gat") return true; // self-attention and CAF are dense by construction
    const rel = DATA.relations.find((r) => r.name === name);
    return Boolean(rel && rel.dense);
  }

  // ---- the picker ----------------------------------------------------------------------------
  function verdict(u) {
    return u.true === u.predicted ? "right" : "wrong";
  }
  function matches(u) {
    const q = byId("search").value.trim().toLowerCase();
    const t = byId("filter-true").value;
    const p = byId("filter-pred").value;
    const c = byId("filter-correct").value;
    if (q && ![u.uid, u.speaker, u.text, u.dialogue].some((s) => String(s).toLowerCase().includes(q))) return false;
    if (t !== "" && String(u.true) !== t) return false;
    if (p !== "" && String(u.predicted) !== p) return false;
    return !(c && verdict(u) !== c);
  }
  function fillPicker() {
    const select = byId("utterance");
    const shown = utterances.filter(matches);
    select.replaceChildren(...shown.map((u) => {
      const mark = u.true === u.predicted ? "✓" : "✗";
      return option(u.uid, `${mark} ${u.uid}  ${DATA.labels[u.true]} → ${DATA.labels[u.predicted]}`);
    }));
    byId("count").textContent = `${shown.length} of ${utterances.length} utterances`;
    if (shown.some((u) => u.uid === state.uid)) select.value = state.uid;
    else if (shown.length) { state.uid = shown[0].uid; select.value = state.uid; }
    render();
  }
  function fillControls() {
    const relation = byId("relation");
    const gat = html("optgroup", { label: "GAT relations" });
    for (const r of DATA.relations) gat.append(option(`gat:${r.name}`, `${r.name} (${r.src_type} → ${r.dst_type})`));
    const blocks = html("optgroup", { label: "MSDE and CAF" });
    for (const m of DATA.modalities) blocks.append(option(`msde:${m}`, `MSDE ${m}`));
    blocks.append(option("caf", "CAF"));
    relation.replaceChildren(gat, blocks);
    state.block = relation.value = DATA.relations.length ? `gat:${DATA.relations[0].name}` : "caf";
    byId("layer").replaceChildren(...[...Array(DATA.layers).keys()].map((l) => option(l, String(l))));
    byId("layer").value = String(state.layer);
    for (const id of ["filter-true", "filter-pred"]) {
      DATA.labels.forEach((label, i) => byId(id).append(option(i, label)));
    }
    fillHeads();
  }
  function fillHeads() {
    const kind = state.block.split(":")[0];
    const select = byId("head");
    const count = DATA.heads[kind] || 0;
    select.replaceChildren(option("mean", "mean"), ...[...Array(count).keys()].map((h) => option(h, String(h))));
    if (state.head !== "mean" && Number(state.head) >= count) state.head = "mean";
    select.value = String(state.head);
    byId("layer").disabled = kind !== "gat";
  }

  // ---- the prediction ------------------------------------------------------------------------
  function renderPrediction(u) {
    const box = byId("prediction");
    const v = verdict(u);
    box.dataset.true = DATA.labels[u.true];
    box.dataset.predicted = DATA.labels[u.predicted];
    box.dataset.correct = v;
    const head = html("span", {}, `${u.uid} (${u.speaker}): true ${DATA.labels[u.true]}, predicted ${DATA.labels[u.predicted]} `);
    const verdictEl = html("span", { class: `verdict ${v}` }, v);
    const bars = DATA.labels.map((label, i) => {
      const p = u.probs[i];
      const cls = ["prob", i === u.predicted ? "predicted" : "", i === u.true ? "true" : ""].join(" ").trim();
      const item = html("span", { class: cls, "data-class": label, "data-prob": String(p) }, `${label} `);
      item.append(html("span", { class: "bar", style: `width:${Math.round(p * 80)}px` }), ` ${p.toFixed(2)}`);
      return item;
    });
    const text = html("div", { style: "flex-basis:100%;color:#555" }, u.text);
    box.replaceChildren(head, verdictEl, ...bars, text);
  }

  // ---- graph view ----------------------------------------------------------------------------
  function positions(nodes, width, bandY) {
    const pos = new Map();
    const withSpans = nodes.filter((n) => n.end !== null);
    const duration = withSpans.length ? Math.max(...withSpans.map((n) => n.end)) : 0;
    for (const m of BAND_ORDER) {
      const group = ofModality(nodes, m);
      const timed = duration > 0 && group.every((n) => n.start !== null);
      group.forEach((n, i) => {
        const x = timed ? (n.start + n.end) / 2 / duration : (i + 0.5) / group.length;
        pos.set(n.id, [90 + x * (width - 160), bandY[m]]);
      });
    }
    return pos;
  }
  function keepTop(cells, k) {
    if (!k) return cells;
    const byRow = new Map();
    for (const c of cells) (byRow.get(c.row) || byRow.set(c.row, []).get(c.row)).push(c);
    return [...byRow.values()].flatMap((list) => list.sort((a, b) => b.value - a.value).slice(0, k));
  }
  function drawGraph(u, matrix) {
    const width = 980;
    const bands = BAND_ORDER.filter((m) => DATA.modalities.includes(m));
    const bandY = Object.fromEntries(bands.map((m, i) => [m, 80 + i * 150]));
    const height = 80 + bands.length * 150;
    const root = svg("svg", { width: "100%", viewBox: `0 0 ${width} ${height}` }); // scales to the panel
    root.append(svg("text", { x: 8, y: 16 }, matrix.title + (state.topk ? `, top ${state.topk} per node` : "")));
    const nodes = nodesOf(u);
    const pos = positions(nodes, width, bandY);
    for (const r of matrix.rows) if (r.index === -1) pos.set(r.id, [width - 40, bandY[r.modality]]); // CAF summaries
    const degree = new Map();
    for (const c of matrix.cells) degree.set(c.row, (degree.get(c.row) || 0) + 1);
    const cells = keepTop(matrix.cells, state.topk);
    const lift = cells.map((c) => c.value * degree.get(c.row));
    const top = Math.max(...lift, 1e-12);
    const edges = svg("g", { class: "edges" });
    cells.map((c, i) => [c, lift[i] / top]).sort((a, b) => a[1] - b[1]).forEach(([c, s]) => {
      const [x0, y0] = pos.get(matrix.cols[c.col].id);
      const [x1, y1] = pos.get(matrix.rows[c.row].id);
      const dx = x1 - x0, dy = y1 - y0;
      const bend = Math.abs(dy) < 1 ? 0.35 + 40 / Math.max(Math.hypot(dx, dy), 1) : 0.12;
      const cx = (x0 + x1) / 2 - dy * bend, cy = (y0 + y1) / 2 + dx * bend;
      edges.append(svg("path", {
        d: `M${x0},${y0} Q${cx},${cy} ${x1},${y1}`, fill: "none", stroke: matrix.colour,
        "stroke-opacity": (0.05 + 0.85 * s * s).toFixed(3), "stroke-width": (0.3 + 3 * s * s).toFixed(2),
        "data-row": matrix.rows[c.row].id, "data-col": matrix.cols[c.col].id, "data-value": String(c.value),
      }));
    });
    root.append(edges);
    for (const m of bands) {
      const group = ofModality(nodes, m);
      root.append(svg("text", { x: 8, y: bandY[m] + 4, class: "band" }, group.length ? m : `${m} (no nodes)`));
      for (const n of group) {
        const [x, y] = pos.get(n.id);
        const size = 3 + 3 * Math.sqrt(Math.min(Math.max(n.pooling * group.length, 0.3), 4));
        root.append(svg("circle", { cx: x, cy: y, r: size.toFixed(1), class: "node", "data-node": n.id }));
        const thumb = thumbOf(u, n); // under the node, the span label under it: below the bottom band, clear of edges
        if (thumb) {
          const image = svg("image", { href: thumb, x: x - THUMB / 2, y: y + 10, width: THUMB, height: THUMB, class: "thumb", "data-node": n.id });
          image.append(svg("title", {}, [n.label, boxText(u, n)].filter(Boolean).join(", ")));
          root.append(image);
        }
        const ly = m === "text" ? y - 10 : y + 10 + (thumb ? THUMB + 4 : 0);
        const anchor = m === "text" ? "start" : "end";
        root.append(svg("text", { x, y: ly, "text-anchor": anchor, transform: `rotate(-90 ${x} ${ly})`, class: "label", "data-node": n.id }, n.label));
      }
    }
    for (const r of matrix.rows) {
      if (r.index !== -1) continue;
      const [x, y] = pos.get(r.id);
      root.append(svg("rect", { x: x - 6, y: y - 6, width: 12, height: 12, transform: `rotate(45 ${x} ${y})`, class: "node", "data-node": r.id }));
      root.append(svg("text", { x: x - 14, y: y - 12 }, "summary"));
    }
    return root;
  }

  // ---- heatmap view --------------------------------------------------------------------------
  function drawHeatmap(matrix) {
    const n = Math.max(matrix.rows.length, matrix.cols.length, 1);
    const cell = Math.max(8, Math.min(22, Math.floor(640 / n)));
    const left = 130, top = 130;
    const width = left + cell * matrix.cols.length + 90;
    const height = top + cell * matrix.rows.length + 20;
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}` });
    const defs = svg("defs");
    const hatch = svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
    hatch.append(svg("rect", { width: 6, height: 6, fill: "#d0d0d0" }), svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#fff", "stroke-width": 2 }));
    defs.append(hatch);
    root.append(defs, svg("text", { x: 8, y: 16 }, matrix.title));
    const max = Math.max(...matrix.cells.map((c) => c.value), 1e-12);
    const filled = new Map(matrix.cells.map((c) => [`${c.row}|${c.col}`, c.value]));
    matrix.rows.forEach((r, i) => {
      root.append(svg("text", { x: left - 4, y: top + i * cell + cell * 0.7, "text-anchor": "end", class: "label", "data-node": r.id }, r.label));
      matrix.cols.forEach((c, j) => {
        const value = filled.get(`${i}|${j}`);
        const attrs = { x: left + j * cell, y: top + i * cell, width: cell - 1, height: cell - 1, "data-row": r.id, "data-col": c.id };
        const rect = value === undefined
          ? svg("rect", { ...attrs, class: "cell masked", fill: "url(#hatch)" })
          : svg("rect", { ...attrs, class: "cell", fill: colour(Math.sqrt(value / max)), "data-value": String(value) });
        rect.append(svg("title", {}, value === undefined ? `${r.label} ← ${c.label}: no edge` : `${r.label} ← ${c.label}: ${fmt(value)}`));
        root.append(rect);
      });
    });
    matrix.cols.forEach((c, j) => {
      const x = left + j * cell + cell * 0.7, y = top - 4;
      root.append(svg("text", { x, y, transform: `rotate(-90 ${x} ${y})`, class: "label", "data-node": c.id }, c.label));
    });
    const barX = left + cell * matrix.cols.length + 20;
    for (let k = 0; k < 50; k++) {
      root.append(svg("rect", { x: barX, y: top + (49 - k) * 4, width: 12, height: 4, fill: colour(Math.sqrt(k / 49)) }));
    }
    root.append(svg("text", { x: barX + 16, y: top + 8 }, fmt(max)), svg("text", { x: barX + 16, y: top + 200 }, "0"));
    root.append(svg("rect", { x: barX, y: top + 215, width: 12, height: 12, fill: "url(#hatch)" }), svg("text", { x: barX + 16, y: top + 225 }, "no edge"));
    return root;
  }

  // ---- hover: a node's label, span and incoming attention -------------------------------------
  function showNode(u, matrix, id) {
    const box = byId("node-info");
    const node = matrix.rows.find((n) => n.id === id) || matrix.cols.find((n) => n.id === id) || nodesOf(u).find((n) => n.id === id);
    if (!node) {
      delete box.dataset.node;
      box.replaceChildren(html("p", { class: "hint" }, "hover a node or a heatmap label"));
      return;
    }
    for (const el of document.querySelectorAll("#canvas .hover")) el.classList.remove("hover");
    for (const el of document.querySelectorAll(`#canvas [data-node="${id}"]`)) el.classList.add("hover");
    box.dataset.node = id;
    const span = node.start !== null && node.start !== undefined ? `${node.start.toFixed(2)}-${node.end.toFixed(2)}s` : "no time span";
    const parts = [html("h2", {}, `${node.label} (${node.id})`), html("p", {}, `${node.modality}, ${span}`)];
    const thumb = thumbOf(u, node);
    if (thumb) parts.push(html("img", { src: thumb, class: "thumb", alt: `image read by ${node.id}` }));
    const where = boxText(u, node);
    if (where) parts.push(html("p", { class: "box" }, where));
    const row = matrix.rows.indexOf(node);
    const incoming = matrix.cells.filter((c) => c.row === row).sort((a, b) => b.value - a.value);
    if (row < 0 || !incoming.length) {
      parts.push(html("p", { class: "hint" }, "no incoming attention in this view"));
    } else {
      parts.push(html("p", {}, `incoming attention (${matrix.title}):`));
      const table = html("table", { id: "incoming" });
      for (const c of incoming) {
        const src = matrix.cols[c.col];
        const tr = html("tr", { "data-src": src.id });
        tr.append(html("td", {}, src.label), html("td", { class: "value", "data-value": String(c.value) }, fmt(c.value)));
        table.append(tr);
      }
      parts.push(table);
    }
    box.replaceChildren(...parts);
  }

  // ---- the conversation ----------------------------------------------------------------------
  function renderConversation(u) {
    const section = byId("conversation");
    const turns = utterances.filter((x) => x.dialogue === u.dialogue); // page order = time order
    const hasDialogue = turns.some((x) => x.dialogue_attention);
    section.hidden = turns.length < 2 && !hasDialogue;
    if (section.hidden) return;
    const speakers = [...new Set(turns.map((x) => x.speaker))];
    const step = 120, lane = 38, left = 90;
    const top = hasDialogue ? 90 : 30; // room for the arcs above the lanes
    const width = left + turns.length * step + 20, height = top + speakers.length * lane + 10;
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}` });
    speakers.forEach((s, i) => root.append(svg("text", { x: 6, y: top + 4 + i * lane, class: "band" }, s)));
    const at = new Map(turns.map((x, t) => [x.uid, [left + t * step + step / 2, top + speakers.indexOf(x.speaker) * lane]]));
    const arcs = (x) => (x.dialogue_attention || []).filter((l) => l.source !== x.uid); // attention to itself has no arc
    const relations = [...new Set(turns.flatMap((x) => arcs(x).map((l) => l.relation)))];
    for (const link of arcs(u)) { // dialogue attention of the selected utterance, as arcs into it
      if (!at.has(link.source)) continue;
      const [x0, y0] = at.get(link.source).map((v, k) => v - 11 * k), [x1, y1] = at.get(u.uid).map((v, k) => v - 11 * k); // box tops
      const lift = 14 + Math.abs(x1 - x0) / 5;
      const arc = svg("path", {
        d: `M${x0},${y0} Q${(x0 + x1) / 2},${Math.min(y0, y1) - lift} ${x1},${y1}`, fill: "none",
        stroke: PALETTE[relations.indexOf(link.relation) % PALETTE.length], "stroke-width": (0.5 + 5 * link.attention).toFixed(2),
        "stroke-opacity": 0.75, class: "dialogue", "data-source": link.source, "data-relation": link.relation, "data-value": String(link.attention),
      });
      arc.append(svg("title", {}, `${link.relation}: ${link.source} → ${u.uid}, ${fmt(link.attention)}`));
      root.append(arc);
    }
    relations.forEach((r, i) => root.append(svg("text", { x: left + i * 110, y: 14, style: `fill:${PALETTE[i % PALETTE.length]}` }, `— ${r}`)));
    for (const x of turns) {
      const [cx, cy] = at.get(x.uid);
      const g = svg("g", { class: `turn${x.uid === u.uid ? " selected" : ""}`, "data-uid": x.uid });
      g.append(svg("rect", { x: cx - 56, y: cy - 11, width: 112, height: 22, rx: 4, fill: x.true === x.predicted ? "#e3f4e6" : "#fbe3e3", stroke: "#999" }));
      g.append(svg("text", { x: cx, y: cy + 4, "text-anchor": "middle" }, `${DATA.labels[x.true]} → ${DATA.labels[x.predicted]}`));
      g.append(svg("title", {}, `${x.uid} (${x.speaker}): ${x.text}`));
      g.addEventListener("click", () => select(x.uid));
      root.append(g);
    }
    byId("conversation-canvas").replaceChildren(root);
  }

  // ---- rendering and events ------------------------------------------------------------------
  function select(uid) {
    state.uid = uid;
    const picker = byId("utterance");
    if ([...picker.options].some((o) => o.value === uid)) picker.value = uid;
    render();
  }
  function render() {
    const u = byUid.get(state.uid);
    const canvas = byId("canvas");
    if (!u) { canvas.replaceChildren(html("p", { class: "hint" }, "no utterance matches the filters")); return; }
    const matrix = currentMatrix(u);
    const view = state.view || (isDense(state.block) ? "heatmap" : "graph");
    byId("view-graph").classList.toggle("active", view === "graph");
    byId("view-heatmap").classList.toggle("active", view === "heatmap");
    canvas.dataset.view = view;
    canvas.dataset.uid = u.uid;
    canvas.dataset.block = state.block;
    canvas.dataset.layer = String(state.layer);
    canvas.dataset.head = String(state.head);
    canvas.replaceChildren(view === "graph" ? drawGraph(u, matrix) : drawHeatmap(matrix));
    for (const el of canvas.querySelectorAll("[data-node]")) {
      el.addEventListener("mouseenter", () => { state.hover = el.dataset.node; showNode(u, matrix, state.hover); });
    }
    renderPrediction(u);
    renderConversation(u);
    if (state.hover) showNode(u, matrix, state.hover); // keep the hovered node's panel across switches
  }
  function bind() {
    for (const id of ["search", "filter-true", "filter-pred", "filter-correct"]) {
      byId(id).addEventListener(id === "search" ? "input" : "change", fillPicker);
    }
    byId("utterance").addEventListener("change", (e) => select(e.target.value));
    byId("relation").addEventListener("change", (e) => { state.block = e.target.value; fillHeads(); render(); });
    byId("layer").addEventListener("change", (e) => { state.layer = Number(e.target.value); render(); });
    byId("head").addEventListener("change", (e) => { state.head = e.target.value; render(); });
    byId("top-k").addEventListener("change", (e) => { state.topk = Number(e.target.value); render(); });
    byId("view-graph").addEventListener("click", () => { state.view = "graph"; render(); });
    byId("view-heatmap").addEventListener("click", () => { state.view = "heatmap"; render(); });
  }

  byId("summary").textContent = `${utterances.length} utterances, ${DATA.relations.length} relations, ${DATA.layers} GAT layers`;
  fillControls();
  bind();
  fillPicker();
})();
