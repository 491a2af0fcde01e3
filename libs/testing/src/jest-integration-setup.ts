// Integration suites start real PostgreSQL databases, registries and clients.
jest.setTimeout(180_000);
