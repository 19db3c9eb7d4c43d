// Authorization code + PKCE with panva's openid-client, in two steps around a real browser login.
// Input (JSON on stdin): { step, issuer, clientId, clientSecret?, method, redirectUri, scope?, ... }
// method: "client_secret_basic", "client_secret_post" or "none" (a public client).
//   step "start":  { ..., prompt?, acrValues? }  -> { url, codeVerifier, state, nonce }
//   step "finish": { ..., callbackUrl, codeVerifier, state, nonce }
//                  -> { idTokenClaims, userinfo, token, refreshed, refreshedClaims, reuse, endSessionUrl? }
//   (endSessionUrl, RP-Initiated Logout, when the input has postLogoutRedirectUri)
// Output: JSON on stdout; on failure { failed: true, ... } and exit code 1.
import * as client from 'openid-client';

let raw = '';
for await (const chunk of process.stdin) raw += chunk;
const input = JSON.parse(raw);

function authentication() {
  switch (input.method) {
    case 'client_secret_basic': return client.ClientSecretBasic(input.clientSecret);
    case 'client_secret_post': return client.ClientSecretPost(input.clientSecret);
    case 'none': return client.None();
    default: throw new Error(`unknown method ${input.method}`);
  }
}

async function configuration() {
  const options = input.issuer.startsWith('http:') ? { execute: [client.allowInsecureRequests] } : undefined;
  const metadata = input.method === 'none' ? { token_endpoint_auth_method: 'none' } : input.clientSecret;
  return client.discovery(new URL(input.issuer), input.clientId, metadata, authentication(), options);
}

async function start(config) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: input.redirectUri,
    scope: input.scope ?? 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...(input.prompt ? { prompt: input.prompt } : {}),
    ...(input.acrValues ? { acr_values: input.acrValues } : {}),
  });
  return { url: url.href, codeVerifier, state, nonce };
}

async function finish(config) {
  const tokens = await client.authorizationCodeGrant(config, new URL(input.callbackUrl), {
    pkceCodeVerifier: input.codeVerifier,
    expectedState: input.state,
    expectedNonce: input.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const out = {
    idTokenClaims: claims,
    userinfo,
    token: { token_type: tokens.token_type, expires_in: tokens.expiresIn(), scope: tokens.scope,
             has_refresh_token: Boolean(tokens.refresh_token), id_token: tokens.id_token,
             access_token: tokens.access_token },
  };
  if (tokens.refresh_token) {
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    out.refreshed = { token_type: refreshed.token_type, scope: refreshed.scope,
                      rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
                      new_access_token: refreshed.access_token !== tokens.access_token };
    out.refreshedClaims = refreshed.claims() ?? null;
    // The old refresh token after rotation: reuse must fail (RFC 9700 §4.14.2).
    if (out.refreshed.rotated) {
      try {
        await client.refreshTokenGrant(config, tokens.refresh_token);
        out.reuse = { accepted: true };
      } catch (err) {
        out.reuse = { accepted: false, error: err.error ?? err.code };
      }
    }
  }
  if (input.postLogoutRedirectUri) {
    out.endSessionUrl = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token, post_logout_redirect_uri: input.postLogoutRedirectUri, state: 'rp-logout',
    }).href;
  }
  return out;
}

try {
  const config = await configuration();
  const out = input.step === 'start' ? await start(config) : await finish(config);
  console.log(JSON.stringify(out));
} catch (err) {
  console.log(JSON.stringify({ failed: true, name: err.name, message: err.message, code: err.code,
                               error: err.error, error_description: err.error_description,
                               status: err.status, cause: String(err.cause?.message ?? err.cause ?? '') }));
  process.exitCode = 1;
}
