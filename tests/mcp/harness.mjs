// tests/mcp/harness.mjs — what every Node test script here needs around the binaries it starts:
// a temporary data directory, children that die with the script whatever happens (uncaught
// errors included: 'exit' runs then), a watchdog that fails the test instead of letting CTest
// kill it and orphan them, and the skip for a binary that was not built.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// prefix: the data directory's name prefix; watchdogS: seconds before the test fails.
// Returns { data, need(file), track(child) }.
export function harness(prefix, watchdogS) {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const spawned = [];
  process.on('exit', () => {
    for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    fs.rmSync(data, { recursive: true, force: true });
  });
  setTimeout(() => {
    console.log(`FAIL watchdog: the test did not finish within ${watchdogS} s`);
    process.exit(1);
  }, watchdogS * 1000).unref();
  return {
    data,
    need(file) {
      try {
        fs.accessSync(file, fs.constants.X_OK);
      } catch {
        // CTest reports 77 as "skipped" (SKIP_RETURN_CODE): a build dir that built only some
        // targets; `make test` builds everything, so there this never happens.
        console.log(`SKIP ${file} is not built (build postly-mcp, mcp_fixture and postly-authz)`);
        process.exit(77);
      }
    },
    track(child) {
      spawned.push(child);
      child.on('error', (e) => {
        console.log(`FAIL ${child.spawnfile}: ${e.message}`);
        process.exit(1);
      });
      return child;
    },
  };
}
