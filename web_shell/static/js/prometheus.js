// A small reader of the Prometheus text format (what `GET /metrics` answers): samples with
// their labels, sums over label sets and quantiles estimated from histogram buckets.

const SAMPLE = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabel(value) {
  return value.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
}

function number(text) {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  return Number(text);
}

/**
 * Parse exposition text into samples.
 * @param {string} text
 * @returns {{name: string, labels: Record<string, string>, value: number}[]}
 */
export function parseMetrics(text) {
  const samples = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, name, value] of (match[2] || "").matchAll(LABEL)) labels[name] = unescapeLabel(value);
    samples.push({ name: match[1], labels, value: number(match[3]) });
  }
  return samples;
}

/** The samples of one metric, optionally only those whose labels pass `where`. */
export function select(samples, name, where = () => true) {
  return samples.filter((s) => s.name === name && where(s.labels));
}

/** Whether the metric is exported at all (e.g. the bus metrics only exist with Redis). */
export function has(samples, name) {
  return samples.some((s) => s.name === name);
}

/** The sum over every label set of a metric (0 when absent). */
export function sum(samples, name, where) {
  return select(samples, name, where).reduce((total, s) => total + s.value, 0);
}

/**
 * The q-quantile of a histogram (`<name>_bucket` cumulative counts, summed over label sets),
 * interpolated linearly inside the bucket, as Prometheus' histogram_quantile does.
 * Returns null when there are no observations.
 */
export function histogramQuantile(samples, name, q) {
  const byBound = new Map();
  for (const s of select(samples, `${name}_bucket`)) {
    const bound = number(s.labels.le);
    byBound.set(bound, (byBound.get(bound) || 0) + s.value);
  }
  const buckets = [...byBound.entries()].sort((a, b) => a[0] - b[0]);
  if (!buckets.length) return null;
  const total = buckets[buckets.length - 1][1];
  if (!total) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of buckets) {
    if (count >= rank) {
      if (bound === Infinity) return lowerBound; // beyond the last finite bucket
      const inBucket = count - lowerCount;
      return inBucket ? lowerBound + (bound - lowerBound) * ((rank - lowerCount) / inBucket) : bound;
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}
