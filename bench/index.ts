/**
 * `npm run bench`: every benchmark in one run, printed as one table. Figures are measured on this
 * machine in this run; compare ratios, not absolute numbers, across machines.
 */
import { runConsumerBench } from './consumer';
import { runGateBench } from './gate';
import type { BenchRow } from './report';
import { runRotationBench } from './rotation';

async function main(): Promise<void> {
  const sections: [string, () => Promise<BenchRow[]>][] = [
    ['rotation', () => runRotationBench(10)],
    ['consumer', () => runConsumerBench()],
    ['gate', () => runGateBench([1, 10, 100, 500])],
  ];
  const table: { section: string; row: BenchRow }[] = [];
  for (const [section, run] of sections) {
    process.stderr.write(`running ${section} benchmark...\n`);
    for (const row of await run()) table.push({ section, row });
  }
  const width = Math.max(...table.map((t) => t.row.name.length));
  console.log(`\n${'section'.padEnd(9)} ${'figure'.padEnd(width)} ${'value'.padStart(12)} unit`);
  for (const { section, row } of table) {
    const v = Number.isInteger(row.value) ? String(row.value) : row.value.toFixed(row.value < 10 ? 3 : 1);
    console.log(`${section.padEnd(9)} ${row.name.padEnd(width)} ${v.padStart(12)} ${row.unit}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
