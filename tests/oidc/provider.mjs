// A real OpenID provider for tests/auth_oidc.rs: the `oidc-provider`
// package (node-oidc-provider), on loopback, with its development
// login and consent pages (any user name, any password).
//   node provider.mjs <port> <client_id> <client_secret> <redirect_uri>[,<redirect_uri>...]
// prints {"issuer": "..."} once it listens.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUri.split(','),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true },
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'] },
  // The profile claims in the ID token itself (no userinfo call needed).
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: `sub-${id}`, preferred_username: id, name: `${id} (from the provider)` };
      },
    };
  },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(JSON.stringify({ issuer })));
