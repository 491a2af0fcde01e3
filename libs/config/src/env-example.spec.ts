import * as fs from 'node:fs';
import * as path from 'node:path';
import { getMetadataStorage } from 'class-validator';
import { EnvironmentVariables } from './environment-variables';
import { loadGatewayConfig } from './gateway-config';

const root = path.resolve(__dirname, '../../..');

// The "# ── Compose" group holds variables only compose files interpolate (published port,
// PostgreSQL service); the gateway never reads them. libs/testing/src/compose checks that group.
function exampleVariables(group: 'gateway' | 'compose' = 'gateway'): Map<string, string> {
  const text = fs.readFileSync(path.join(root, '.env.example'), 'utf8');
  const vars = new Map<string, string>();
  let current: 'gateway' | 'compose' = 'gateway';
  for (const line of text.split('\n')) {
    if (line.startsWith('# ── ')) current = line.startsWith('# ── Compose') ? 'compose' : 'gateway';
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m && current === group) vars.set(m[1], m[2]);
  }
  return vars;
}

describe('.env.example', () => {
  const declared = new Set(
    getMetadataStorage()
      .getTargetValidationMetadatas(EnvironmentVariables, '', true, false)
      .map((m) => m.propertyName),
  );

  it('documents every variable the gateway reads, and no other', () => {
    const documented = new Set(exampleVariables().keys());
    expect([...declared].filter((v) => !documented.has(v))).toEqual([]);
    expect([...documented].filter((v) => !declared.has(v))).toEqual([]);
  });

  it('keeps compose-only variables out of the gateway configuration', () => {
    const compose = [...exampleVariables('compose').keys()];
    expect(compose.filter((v) => declared.has(v))).toEqual([]);
  });

  it('is itself a valid configuration (copying it unchanged must not stop the start)', () => {
    const env = Object.fromEntries(exampleVariables());
    expect(() => loadGatewayConfig(env)).not.toThrow();
  });

  it('never advertises a localhost realm', () => {
    const env = exampleVariables();
    expect(env.get('OCI_REGISTRY_SERVICE')).not.toMatch(/localhost|127\.0\.0\.1/);
    expect(env.get('OCI_REGISTRY_REALM') ?? '').not.toMatch(/localhost|127\.0\.0\.1/);
  });
});
