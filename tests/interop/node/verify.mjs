// Verify an RFC 9068 access token with panva's jose against the server's JWKS.
// Input (JSON on stdin): { jwksUri, token, issuer, audience, algorithms? }. Output: { header, payload }.
import { createRemoteJWKSet, jwtVerify } from 'jose';

let raw = '';
for await (const chunk of process.stdin) raw += chunk;
const { jwksUri, token, issuer, audience, algorithms } = JSON.parse(raw);

try {
  const jwks = createRemoteJWKSet(new URL(jwksUri));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt', algorithms });
  console.log(JSON.stringify({ header: protectedHeader, payload }));
} catch (err) {
  console.log(JSON.stringify({ failed: true, name: err.name, code: err.code, message: err.message }));
  process.exitCode = 1;
}
