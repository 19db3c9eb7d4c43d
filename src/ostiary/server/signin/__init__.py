"""The sign-in engine: the interaction service, its outcomes, the levels a sign-in needs."""
