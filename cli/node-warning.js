'use strict';
// On Node.js below 22, the AWS SDK's multi-line NodeVersionSupportWarning becomes one short line on
// stderr (stdout stays clean for --json); NODE_NO_WARNINGS=1 or --no-warnings silences it. Plain
// JavaScript, because cli/bin.js calls it before it knows whether the compiled CLI can run; the
// packaged CLI (packages/cli) bundles it.

const RECOMMENDED_NODE_MAJOR = 22;

/** On Node.js < 22: the AWS SDK's 9-line support warning becomes one line, once per process. */
function shortenNodeVersionWarning() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= RECOMMENDED_NODE_MAJOR) return;
  const emitWarning = process.emitWarning;
  let told = false;
  process.emitWarning = function (warning, ...rest) {
    const text = typeof warning === 'string' ? warning : warning && warning.message;
    if (typeof text === 'string' && text.startsWith('NodeVersionSupportWarning')) {
      const silenced =
        process.env.NODE_NO_WARNINGS === '1' || process.execArgv.includes('--no-warnings');
      if (!told && !silenced) {
        process.stderr.write(
          `converge: Node.js ${major} reaches end of AWS SDK support in January 2027; Node.js ${RECOMMENDED_NODE_MAJOR} is recommended\n`,
        );
      }
      told = true;
      return;
    }
    return emitWarning.call(process, warning, ...rest);
  };
}

module.exports = { RECOMMENDED_NODE_MAJOR, shortenNodeVersionWarning };
