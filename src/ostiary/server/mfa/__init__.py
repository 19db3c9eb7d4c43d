"""Second factors of this server: TOTP (RFC 6238) and one-time recovery codes."""
