// Small, dependency-free pieces the Cluster and Lab pages share: a parser
// for the Prometheus text format, histogram quantiles, and SVG line charts.
//
// Charts are drawn from samples the page took from the nodes themselves;
// nothing here models the cluster.

const SVG = 'http://www.w3.org/2000/svg';

/** Parses `/metrics` text into [{name, labels, value}]. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      for (const pair of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[pair[1]] = pair[2];
      }
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** The q-quantile of a histogram given as [[le, cumulative count]], like PromQL's histogram_quantile. */
export function quantile(q, buckets) {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.length ? sorted[sorted.length - 1][1] : 0;
  if (!total) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      const inBucket = count - prevCount;
      return inBucket ? prevLe + (le - prevLe) * ((rank - prevCount) / inBucket) : le;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A readable number: 1234 → "1.2k", 0.0042 s → "4.2 ms". */
export function formatValue(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (unit === 's') {
    if (v < 0.001) return `${(v * 1e6).toFixed(0)} µs`;
    if (v < 1) return `${(v * 1000).toFixed(v < 0.01 ? 1 : 0)} ms`;
    return `${v.toFixed(2)} s`;
  }
  if (Math.abs(v) >= 10000) return `${(v / 1000).toFixed(1)}k`;
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(v < 10 ? 1 : 0);
}

/**
 * Draws series [{name, cls, points: [[t, v]]}] into `svg` over the last
 * `windowMs`, with a y axis from 0 to the largest value, and sets the
 * figure's accessible label to the latest values.
 */
export function drawLines(svg, series, { windowMs, unit = '', now = Date.now(), step = false }) {
  const width = 480;
  const height = 160;
  const left = 48;
  const bottom = 18;
  const top = 8;
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const from = now - windowMs;
  let max = 0;
  for (const s of series) for (const [, v] of s.points) if (v !== null && v > max) max = v;
  max = max > 0 ? max * 1.1 : 1;
  const x = (t) => left + ((t - from) / windowMs) * (width - left - 4);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    svg.append(el('line', { x1: left, x2: width - 4, y1: y(v), y2: y(v), class: 'chart-grid' }));
    svg.append(el('text', { x: left - 4, y: y(v) + 4, class: 'chart-axis', 'text-anchor': 'end' }, formatValue(v, unit)));
  }
  for (const seconds of [60, 120, 180, 240]) {
    const t = now - seconds * 1000;
    if (t > from) svg.append(el('text', { x: x(t), y: height - 4, class: 'chart-axis', 'text-anchor': 'middle' }, `-${seconds / 60}m`));
  }
  for (const s of series) {
    const pts = s.points.filter(([t, v]) => t >= from && v !== null);
    if (!pts.length) continue;
    let d = '';
    pts.forEach(([t, v], i) => {
      if (i === 0) d += `M${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      else if (step) d += `H${x(t).toFixed(1)}V${y(v).toFixed(1)}`;
      else d += `L${x(t).toFixed(1)},${y(v).toFixed(1)}`;
    });
    svg.append(el('path', { d, class: `chart-line ${s.cls}` }));
  }
  const latest = series
    .map((s) => {
      const last = s.points.filter(([, v]) => v !== null).at(-1);
      return `${s.name} ${last ? formatValue(last[1], unit) : 'no data'}`;
    })
    .join(', ');
  svg.setAttribute('aria-label', latest || 'no data yet');
  return latest;
}

/** The legend of a chart: a swatch and a name per series. */
export function legend(list, series) {
  list.replaceChildren(
    ...series.map((s) => {
      const li = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = `swatch ${s.cls}`;
      swatch.setAttribute('aria-hidden', 'true');
      li.append(swatch, document.createTextNode(s.name));
      return li;
    }),
  );
}
