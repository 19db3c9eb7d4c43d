"""Mail to users: single-use links (links.py), password reset (reset.py), email verification (verify.py)."""
