// A certified OpenID provider (oidc-provider) for the Rust OIDC tests, on a free loopback port.
//
// Usage: node provider.mjs '<json>' where json is
//   { "clients": [{ "client_id", "client_secret", "redirect_uris": [...] }],
//     "accounts": { "<id>": { "email", "email_verified", "name", "groups": [...] } },
//     "redirect_any_port": false }   (true: redirect URIs match whatever their port)
// Prints "listening <issuer>" on stdout once ready. Plain http on 127.0.0.1: the tests exercise
// the OpenID protocol checks, not TLS (the Rust client refuses http except with the explicit
// allow_insecure_loopback test option).
//
// Login without a browser: the interaction page logs in the account named by the authorization
// request's login_hint and grants the requested scopes, answering with the provider's own
// interactionFinished redirect, so a cookie-keeping HTTP client can complete the code flow.
// Without a login_hint (a person in a browser), it shows a sign-in form asking for the account
// name, then does the same; consent is always granted.
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2] ?? '{}');
const accounts = config.accounts ?? {};

// With PORTLESS_IDP_CERT and PORTLESS_IDP_KEY (PEM files for `localhost`), the provider
// speaks https as a real one does, at https://localhost:PORT; else plain http on 127.0.0.1.
const tls = process.env.PORTLESS_IDP_CERT && process.env.PORTLESS_IDP_KEY;
const server = tls
  ? createTlsServer({
    cert: readFileSync(process.env.PORTLESS_IDP_CERT),
    key: readFileSync(process.env.PORTLESS_IDP_KEY),
  })
  : createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
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

  if (config.redirect_any_port) {
    // The portal under test listens on a port chosen at its start, after this provider's:
    // registered redirect URIs then match on everything but the port.
    const strict = provider.Client.prototype.redirectUriAllowed;
    const noPort = (value) => {
      try { const u = new URL(value); u.port = ''; return u.href; } catch { return null; }
    };
    provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
      const wanted = noPort(value);
      return strict.call(this, value)
        || (wanted !== null && this.redirectUris.some((allowed) => noPort(allowed) === wanted));
    };
  }

  provider.use(async (ctx, next) => {
    const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
    if (!match) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    let result;
    if (details.prompt.name === 'login') {
      let hint = details.params.login_hint;
      if (!hint && ctx.method === 'GET') {
        // A person in a browser: the provider's own sign-in page.
        ctx.type = 'html';
        ctx.body = `<!doctype html><title>Test IdP sign-in</title><h1>Test IdP</h1>
<form method="post"><label>Account <input name="login" autofocus></label>
<button type="submit">Sign in at Test IdP</button></form>`;
        return undefined;
      }
      if (!hint) {
        const body = await new Promise((resolve) => {
          let data = '';
          ctx.req.on('data', (chunk) => { data += chunk; });
          ctx.req.on('end', () => resolve(data));
        });
        hint = new URLSearchParams(body).get('login');
      }
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
