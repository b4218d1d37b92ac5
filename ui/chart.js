// SVG charts: per-epoch curves and histograms, with labelled axes.
import { h, num } from "./dom.js";

const W = 640, H = 300, M = { left: 62, right: 16, top: 16, bottom: 46 };

function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(10)));
  return out;
}

function frame(title, xLabel, yLabel, x, y, xt, yt) {
  const g = h("g", {});
  for (const t of yt) {
    g.append(h("line", { class: "gridline", x1: M.left, x2: W - M.right, y1: y(t), y2: y(t) }));
    g.append(h("text", { x: M.left - 6, y: y(t) + 4, "text-anchor": "end" }, num(t, 3)));
  }
  for (const t of xt) g.append(h("text", { x: x(t), y: H - M.bottom + 16, "text-anchor": "middle" }, num(t, 3)));
  g.append(h("line", { class: "axis", x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }));
  g.append(h("line", { class: "axis", x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom }));
  g.append(h("text", { class: "axis-label x-label", x: (M.left + W - M.right) / 2, y: H - 8, "text-anchor": "middle" }, xLabel));
  g.append(h("text", { class: "axis-label y-label", x: 14, y: (M.top + H - M.bottom) / 2, "text-anchor": "middle",
    transform: `rotate(-90 14 ${(M.top + H - M.bottom) / 2})` }, yLabel));
  return h("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title }, h("title", {}, title), g);
}

/**
 * A line chart of series [{name, kind: "train"|"valid", points: [[x, y], ...]}].
 * Each point is a circle with class `point-<kind>` (one per epoch).
 */
export function lineChart({ title, xLabel, yLabel, series }) {
  const all = series.flatMap((s) => s.points).filter(([, v]) => Number.isFinite(v));
  const xs = all.map(([x]) => x), ys = all.map(([, v]) => v);
  const x0 = Math.min(1, ...xs), x1 = Math.max(x0 + 1, ...xs);
  let y0 = ys.length ? Math.min(...ys) : 0, y1 = ys.length ? Math.max(...ys) : 1;
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const x = (v) => M.left + ((v - x0) / (x1 - x0)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - ((v - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const svg = frame(title, xLabel, yLabel, x, y, ticks(x0, x1, 8).filter((t) => Number.isInteger(t)), ticks(y0, y1));
  for (const s of series) {
    const pts = s.points.filter(([, v]) => Number.isFinite(v));
    if (!pts.length) continue;
    svg.append(h("polyline", { class: `line-${s.kind}`, points: pts.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(" ") }));
    for (const [a, b] of pts) {
      svg.append(h("circle", { class: `point point-${s.kind}`, cx: x(a).toFixed(1), cy: y(b).toFixed(1), r: 3 },
        h("title", {}, `${s.name}, epoch ${a}: ${num(b)}`)));
    }
  }
  return h("figure", { class: "curve" },
    svg,
    h("figcaption", { class: "legend" }, series.map((s) => h("span", { class: `swatch-${s.kind}` }, s.name))));
}

/** Training and validation curves of an epoch history (EpochReport list). */
export function historyCharts(history) {
  const loss = lineChart({
    title: "Loss per epoch", xLabel: "epoch", yLabel: "loss",
    series: [
      { name: "training loss", kind: "train", points: history.map((e) => [e.epoch, e.train_loss]) },
      { name: "validation loss", kind: "valid", points: history.map((e) => [e.epoch, e.valid_loss ?? NaN]) },
    ],
  });
  const metricName = (history.find((e) => e.metric) || {}).metric || "metric";
  const metric = history.some((e) => Number.isFinite(e.valid_metric))
    ? lineChart({
      title: `Validation ${metricName} per epoch`, xLabel: "epoch", yLabel: metricName,
      series: [{ name: `validation ${metricName}`, kind: "valid", points: history.map((e) => [e.epoch, e.valid_metric ?? NaN]) }],
    })
    : null;
  return [loss, metric];
}

/** A histogram of {edges: [n+1], counts: [n]}. */
export function histogram({ title, xLabel, yLabel, edges, counts }) {
  const x0 = edges[0], x1 = edges[edges.length - 1] > x0 ? edges[edges.length - 1] : x0 + 1;
  const cmax = Math.max(1, ...counts);
  const x = (v) => M.left + ((v - x0) / (x1 - x0)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - (v / cmax) * (H - M.top - M.bottom);
  const svg = frame(title, xLabel, yLabel, x, y, ticks(x0, x1, 6), ticks(0, cmax).filter((t) => Number.isInteger(t)));
  counts.forEach((c, i) => {
    const a = x(edges[i]), b = x(edges[i + 1]);
    svg.append(h("rect", { class: "bar", x: a + 0.5, y: y(c), width: Math.max(0.5, b - a - 1), height: y(0) - y(c) },
      h("title", {}, `${num(edges[i])} to ${num(edges[i + 1])}: ${c}`)));
  });
  return h("figure", { class: "histogram" }, svg);
}
