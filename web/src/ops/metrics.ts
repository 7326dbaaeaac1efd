// Percentiles from Prometheus histogram buckets, interpolated the way `histogram_quantile` does.

export interface Histogram {
  name: string;
  labels: Record<string, string>;
  /** Cumulative counts by upper bound, ascending; the last bound is +Inf. */
  buckets: { le: number; count: number }[];
  count: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const match of (text ?? '').matchAll(LABEL)) labels[match[1]] = match[2].replace(/\\(.)/g, '$1');
  return labels;
}

/** All histograms in a Prometheus text exposition, keyed by name plus labels (minus `le`). */
export function parseHistograms(text: string): Histogram[] {
  const found = new Map<string, Histogram>();
  for (const line of text.split('\n')) {
    const match = SAMPLE.exec(line);
    if (!match || !match[1].endsWith('_bucket')) continue;
    const { le, ...labels } = parseLabels(match[2]);
    if (le === undefined) continue;
    const name = match[1].slice(0, -'_bucket'.length);
    const key = name + JSON.stringify(Object.entries(labels).sort());
    const histogram = found.get(key) ?? { name, labels, buckets: [], count: 0 };
    histogram.buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: Number(match[3]) });
    found.set(key, histogram);
  }
  for (const histogram of found.values()) {
    histogram.buckets.sort((a, b) => a.le - b.le);
    histogram.count = histogram.buckets[histogram.buckets.length - 1]?.count ?? 0;
  }
  return [...found.values()];
}

/** Adds histograms with the same bounds (e.g. one stage over all outcomes). */
export function mergeHistograms(name: string, labels: Record<string, string>, parts: Histogram[]): Histogram {
  const byBound = new Map<number, number>();
  for (const part of parts) for (const { le, count } of part.buckets) byBound.set(le, (byBound.get(le) ?? 0) + count);
  const buckets = [...byBound].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
  return { name, labels, buckets, count: buckets[buckets.length - 1]?.count ?? 0 };
}

/**
 * The q-quantile (0..1): find the bucket holding rank q·count and interpolate linearly inside
 * it. A rank in the +Inf bucket answers the highest finite bound. Null with no observations.
 */
export function quantile(histogram: Histogram, q: number): number | null {
  if (histogram.count === 0) return null;
  const rank = q * histogram.count;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const { le, count } of histogram.buckets) {
    if (count >= rank) {
      if (le === Infinity) return lowerBound;
      const inBucket = count - lowerCount;
      return inBucket === 0 ? le : lowerBound + ((le - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}
