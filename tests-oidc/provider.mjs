// A certified OpenID provider (oidc-provider) for the Rust OIDC tests, on a free loopback port.
//
// Usage: node provider.mjs '<json>' where json is
//   { "clients": [{ "client_id", "client_secret", "redirect_uris": [...] }],
//     "accounts": { "<id>": { "email", "email_verified", "name", "groups": [...] } } }
// Prints "listening <issuer>" on stdout once ready. Plain http on 127.0.0.1: the tests exercise
// the OpenID protocol checks, not TLS (the Rust client refuses http except with the explicit
// allow_insecure_loopback test option).
//
// Login without a browser: the interaction page logs in the account named by the authorization
// request's login_hint and grants the requested scopes, answering with the provider's own
// interactionFinished redirect, so a cookie-keeping HTTP client can complete the code flow.
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2] ?? '{}');
const accounts = config.accounts ?? {};

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', use: 'sig', alg: 'RS256' };

  const provider = new Provider(issuer, {
    clients: (config.clients ?? []).map((c) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      ...c,
    })),
    jwks: { keys: [jwk] },
    cookies: { keys: ['portless-test-cookie-key'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    // Put the granted claims in the ID token itself, as Google, Keycloak and Entra do.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    async findAccount(ctx, id) {
      const account = accounts[id];
      if (!account) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...account }; } };
    },
  });

  provider.use(async (ctx, next) => {
    const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
    if (!match) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    let result;
    if (details.prompt.name === 'login') {
      const hint = details.params.login_hint;
      if (!accounts[hint]) {
        ctx.status = 400;
        ctx.body = `unknown test account ${hint}`;
        return undefined;
      }
      result = { login: { accountId: hint } };
    } else {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      result = { consent: { grantId: await grant.save() } };
    }
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
    return undefined;
  });

  server.on('request', provider.callback());
  process.stdout.write(`listening ${issuer}\n`);
});
