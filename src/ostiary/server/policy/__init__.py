"""The authorization policy: every "may this party get that" decision, as typed tables.

One module per question (see docs/security.md): which client may be registered with what
(`clients`), which grant may carry which scope (`grants`), who may learn about a token
(`introspection`), which patients a user may see and which may be the context (`patients`).
Callers import the module they need; this package re-exports nothing, so each rule has one home.
"""
