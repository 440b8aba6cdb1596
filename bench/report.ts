/** A benchmark figure, printed by bench/index.ts as one table. */
export interface BenchRow {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Prints rows as an aligned table. */
export function printRows(title: string, rows: readonly BenchRow[]): void {
  const width = Math.max(...rows.map((r) => r.name.length), 10);
  console.log(`\n${title}`);
  for (const r of rows) {
    const v = Number.isInteger(r.value) ? String(r.value) : r.value.toFixed(r.value < 10 ? 3 : 1);
    console.log(`  ${r.name.padEnd(width)}  ${v.padStart(12)} ${r.unit}`);
  }
}
