"""Federation: signing in through upstream OpenID Connect providers (docs/sign-in.md)."""
