// Client credentials with panva's openid-client: discovery, token, introspection, revocation.
// Input (JSON on stdin): { issuer, clientId, clientSecret?, method, privateJwk?, scope?, introspect?, revoke? }
// method: "default" (discovery's own choice from a client_secret), "client_secret_basic",
// "client_secret_post", "client_secret_jwt" or "private_key_jwt". Output: JSON on stdout.
import * as client from 'openid-client';
import { importJWK } from 'jose';

let raw = '';
for await (const chunk of process.stdin) raw += chunk;
const input = JSON.parse(raw);

async function authentication() {
  switch (input.method) {
    case 'default': return undefined;
    case 'client_secret_basic': return client.ClientSecretBasic(input.clientSecret);
    case 'client_secret_post': return client.ClientSecretPost(input.clientSecret);
    case 'client_secret_jwt': return client.ClientSecretJwt(input.clientSecret);
    case 'private_key_jwt': {
      const key = await importJWK(input.privateJwk, input.privateJwk.alg);
      return client.PrivateKeyJwt({ key, kid: input.privateJwk.kid });
    }
    default: throw new Error(`unknown method ${input.method}`);
  }
}

try {
  const options = input.issuer.startsWith('http:') ? { execute: [client.allowInsecureRequests] } : undefined;
  const metadata = input.method === 'private_key_jwt' ? undefined : input.clientSecret;
  const config = await client.discovery(new URL(input.issuer), input.clientId, metadata, await authentication(),
                                        options);
  const out = { issuer: config.serverMetadata().issuer };
  const tokens = await client.clientCredentialsGrant(config, input.scope ? { scope: input.scope } : {});
  out.token = { access_token: tokens.access_token, token_type: tokens.token_type, expires_in: tokens.expires_in,
                scope: tokens.scope };
  if (input.introspect) out.introspection = await client.tokenIntrospection(config, tokens.access_token);
  if (input.revoke) {
    await client.tokenRevocation(config, tokens.access_token);
    out.revoked = true;
    if (input.introspect) out.after = await client.tokenIntrospection(config, tokens.access_token);
  }
  console.log(JSON.stringify(out));
} catch (err) {
  console.log(JSON.stringify({ failed: true, name: err.name, message: err.message, code: err.code,
                               error: err.error, error_description: err.error_description,
                               status: err.status,
                               // WWW-Authenticate challenges (scheme, parameters) when the server sent one
                               cause: Array.isArray(err.cause) ? err.cause : String(err.cause ?? '') }));
  process.exitCode = 1;
}
