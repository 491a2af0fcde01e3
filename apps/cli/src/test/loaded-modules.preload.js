// Preloaded (`node -r`) into a spawned CLI by lean-start.int-spec.ts: when the process exits it
// writes every module file it loaded, one a line, to the file named by GATEHOUSE_TEST_LOADED_MODULES.
// Evidence from require.cache itself, so a heavy import that sneaks back into the read-only path
// shows up whatever its route.
const fs = require('node:fs');

const out = process.env.GATEHOUSE_TEST_LOADED_MODULES;
if (out) process.on('exit', () => fs.writeFileSync(out, Object.keys(require.cache).join('\n') + '\n'));
