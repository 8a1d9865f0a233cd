// A real OpenID Connect provider (panva/oidc-provider) for Caduceus' authentication tests.
//
//   OIDC_AUDIENCE=http://127.0.0.1:8080/fhir OIDC_ADMIN_TOKEN=secret node provider.mjs [port]
//
// Listens on 127.0.0.1 (the port from the argument, else OIDC_PORT, else any free port),
// with issuer http://127.0.0.1:<port>, and prints one JSON line when ready:
//   {"issuer":"http://127.0.0.1:<port>","port":<port>,"kid":"<signing key id>"}
//
// One confidential client (OIDC_CLIENT_ID / OIDC_CLIENT_SECRET, default caduceus-test /
// caduceus-test-secret, sent in the form: client_secret_post) may use client_credentials.
// With resource indicators, its access tokens are JWTs (RS256) for audience OIDC_AUDIENCE,
// carrying the granted `scope`, the client's `client_id`, and a custom `roles` claim
// (OIDC_ROLES, comma-separated, default "clinician"). Scopes the client may ask for:
// OIDC_SCOPES (space-separated, default SMART system scopes).
//
// Key rotation, for tests (only with OIDC_ADMIN_TOKEN set; send it as a bearer token):
//   POST /admin/rotate  a new RSA key signs from now on; the old keys stay in the JWKS
//   POST /admin/retire  every key but the current signing key leaves the JWKS
// Both answer {"kid": "<current signing key id>", "kids": [<published key ids>]}.
// The provider is rebuilt with the new key set on the same port; client_credentials
// tokens are self-contained JWTs, so nothing is lost.

import { generateKeyPairSync, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const audience = process.env.OIDC_AUDIENCE;
if (!audience) {
  console.error('OIDC_AUDIENCE (the FHIR base URL) is required');
  process.exit(2);
}
const clientId = process.env.OIDC_CLIENT_ID || 'caduceus-test';
const clientSecret = process.env.OIDC_CLIENT_SECRET || 'caduceus-test-secret';
const roles = (process.env.OIDC_ROLES || 'clinician').split(',').filter(Boolean);
const scopes = process.env.OIDC_SCOPES || 'system/*.rs system/*.cruds system/Patient.rs system/Observation.rs';
const adminToken = process.env.OIDC_ADMIN_TOKEN || '';
const port = Number(process.argv[2] ?? process.env.OIDC_PORT ?? 0);

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}

// The first key signs; the others are only published.
let keys = [newKey()];
let provider;
const cookieKeys = [randomUUID()];

function build(issuer) {
  const p = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys },
    cookies: { keys: cookieKeys },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== audience) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: scopes,
            audience,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    extraTokenClaims: () => ({ roles }),
    ttl: { ClientCredentials: 300 },
  });
  p.on('server_error', (ctx, err) => console.error('server_error', err));
  return p;
}

function authorized(req) {
  const given = Buffer.from(req.headers.authorization || '');
  const wanted = Buffer.from(`Bearer ${adminToken}`);
  return adminToken !== '' && given.length === wanted.length && timingSafeEqual(given, wanted);
}

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  if (req.url === '/admin/rotate' || req.url === '/admin/retire') {
    if (req.method !== 'POST') return answer(res, 405, { error: 'POST only' });
    if (!authorized(req)) return answer(res, 401, { error: 'admin token required' });
    keys = req.url === '/admin/rotate' ? [newKey(), ...keys] : [keys[0]];
    provider = build(provider.issuer);
    return answer(res, 200, { kid: keys[0].kid, kids: keys.map((k) => k.kid) });
  }
  return provider.callback()(req, res);
});

server.listen(port, '127.0.0.1', () => {
  const { port: bound } = server.address();
  const issuer = `http://127.0.0.1:${bound}`;
  provider = build(issuer);
  console.log(JSON.stringify({ issuer, port: bound, kid: keys[0].kid }));
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
