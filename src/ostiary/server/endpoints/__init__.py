"""Protocol endpoints: one module each; framework-free (the web layer maps them to HTTP)."""
