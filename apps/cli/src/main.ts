import 'reflect-metadata';
import { runCli } from './cli';

// Exit explicitly: a pool or timer left open by a library must not keep the CLI hanging.
runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
