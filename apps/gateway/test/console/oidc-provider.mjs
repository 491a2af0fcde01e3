/* global process */
// A real OpenID provider (oidc-provider, certified) for the console's browser tier, in its own
// process because it is an ES module. argv: port, client id, client secret, redirect URL, and
// optionally a JSON file of groups by login name, read at every sign-in (a test moves someone).
// Staff accounts are the login names typed on its sign-in page; without an entry in that file
// their groups come from the name: "admin" in it is ops-admins, "support" support-team, else none.
import { existsSync, readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri, groupsFile] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const groupsOf = (login) => {
  const listed = groupsFile && existsSync(groupsFile) ? JSON.parse(readFileSync(groupsFile, 'utf8')) : {};
  if (listed[login]) return listed[login];
  return login.includes('admin') ? ['ops-admins'] : login.includes('support') ? ['support-team'] : ['sales'];
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        // The display name carries markup: the console must show it as text.
        return { sub, preferred_username: `${sub}<img src=x onerror=alert(1)>`, groups: groupsOf(sub) };
      },
    };
  },
  pkce: { required: () => true },
  cookies: { keys: ['gatehouse-browser-tier-cookie-key'] },
  features: { devInteractions: { enabled: true } },
});
provider.proxy = false;
const server = provider.listen(Number(port), '127.0.0.1', () => process.stdout.write(`ready ${issuer}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
