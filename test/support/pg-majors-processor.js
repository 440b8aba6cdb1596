/**
 * jest testResultsProcessor (see jest.config.js): adds `convergePgMajors` to the run's results, so
 * the `--json` report says which PostgreSQL majors ran and how many tests each ran. jest keeps a test
 * file's project (`displayName`, e.g. `pg16`) in its in-memory results but drops it from the JSON
 * file's per-file entries, while top-level fields added here are written out.
 *
 * @example
 * // in a --json report:
 * // "convergePgMajors": [{ "major": 14, "project": "pg14", "files": 6, "tests": 40, "passed": 40, "failed": 0, "skipped": 0, "filesFailed": 0 }, ...]
 */
module.exports = function addPgMajors(results) {
  const byProject = new Map();
  for (const file of results.testResults ?? []) {
    const name = typeof file.displayName === 'string' ? file.displayName : file.displayName?.name;
    const match = /^pg(\d+)$/.exec(name ?? '');
    const key = match ? match[1] : 'unattributed';
    const entry = byProject.get(key) ?? {
      major: match ? Number(match[1]) : null,
      project: name ?? null,
      files: 0,
      tests: 0,
      passed: 0,
      failed: 0,
      skipped: 0,
      filesFailed: 0,
    };
    const passed = file.numPassingTests ?? 0;
    const failed = file.numFailingTests ?? 0;
    const skipped = (file.numPendingTests ?? 0) + (file.numTodoTests ?? 0);
    entry.files += 1;
    entry.tests += passed + failed + skipped;
    entry.passed += passed;
    entry.failed += failed;
    entry.skipped += skipped;
    if (file.testExecError || failed > 0) entry.filesFailed += 1;
    byProject.set(key, entry);
  }
  results.convergePgMajors = [...byProject.values()].sort(
    (a, b) => (a.major ?? Infinity) - (b.major ?? Infinity),
  );
  return results;
};
